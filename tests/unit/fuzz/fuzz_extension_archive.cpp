// Fuzzes the uploaded-extension zip reader: central directory, local
// headers, names, inflation and manifest.json.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "control/extension_archive.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // Small bounds so a fuzzer-made bomb is cheap to refuse.
  kindling::control::ExtensionArchiveLimits limits;
  limits.max_total_bytes = 4u << 20;
  limits.max_file_bytes = 1u << 20;
  (void)kindling::control::read_extension_archive(input, limits);
  (void)kindling::control::parse_extension_manifest(input);
  return 0;
}
