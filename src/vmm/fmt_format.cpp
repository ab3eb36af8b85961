// fmt's compiled part, built once into kindling_vmm_core. This is fmt 9's
// src/format.cc (the explicit instantiations below are its own); Debian's
// libfmt-dev ships it only inside libfmt.so, which the static kindling-vmm
// cannot use. Header-only fmt (FMT_HEADER_ONLY) would work too, but it
// compiles the formatting engine (float formatting above all) into every file
// that formats: ~20 copies, a quarter of a megabyte of text in a binary whose
// size is the bulk of its resident memory.
//
// The thousands separator is static (',', only for the `L` specifier, which
// the VMM never uses), so fmt does not reference std::locale and the static
// link does not pull in libstdc++'s locale facets and their stdio/strftime
// dependencies.
#define FMT_STATIC_THOUSANDS_SEPARATOR ','
#include <fmt/format-inl.h>

#if FMT_VERSION < 90000 || FMT_VERSION >= 100000
#error "fmt_format.cpp mirrors fmt 9's src/format.cc; update it for this fmt version"
#endif

FMT_BEGIN_NAMESPACE
namespace detail {

template FMT_API auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template FMT_API auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;

// Explicit instantiations for char.
template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
template FMT_API void buffer<char>::append(const char*, const char*);
template FMT_API void vformat_to(buffer<char>&, string_view, basic_format_args<FMT_BUFFER_CONTEXT(char)>, locale_ref);

// Explicit instantiations for wchar_t (declared extern in fmt/format.h).
template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<wchar_t>;
template FMT_API auto decimal_point_impl(locale_ref) -> wchar_t;
template FMT_API void buffer<wchar_t>::append(const wchar_t*, const wchar_t*);

}  // namespace detail
FMT_END_NAMESPACE
