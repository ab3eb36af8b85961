// The VMM's logger: one line per event, each line one write(2) to stderr or
// to the file named by PUT /logger (--log-path).
//
// Why not spdlog (which the rest of Kindling uses through common/log.hpp):
// kindling-vmm is a static executable whose exec-to-API-ready time and
// per-VM memory are goals of their own (bench/vmm). Debian ships spdlog only
// as a shared library, and header-only spdlog compiles its registry, pattern
// formatter, sinks and their mutexes into every file that logs. The VMM needs
// none of that: a level, a UTC timestamp, the instance id and a message,
// written with a single write(2) per line — atomic for O_APPEND files and
// pipes, and allowed by every thread's seccomp filter (no isatty probe, no
// /etc/localtime). Formatting is fmt's, header-only.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/result.hpp"

namespace kindling::vmm {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kOff };

// Firecracker's and spdlog's names, any case: trace, debug, info, warn or
// warning, error, off.
std::optional<LogLevel> parse_log_level(std::string_view name);

// Where and how lines are written. Until configure_logging is called: stderr,
// level info, the stderr layout below with instance id "anonymous-instance".
struct LogSink {
  // Empty: stderr, as `2026-12-03T18:38:00.123Z info kindling-vmm[ID]: message`.
  // A path: appended to, as Firecracker's logger,
  // `2026-12-03T18:38:00.123Z [ID] info vmm.cpp:194 message`
  // (level and origin only where show_level / show_origin ask for them).
  std::string path;
  std::string instance_id = "anonymous-instance";
  bool show_level = true;
  bool show_origin = false;
};

// Sets the sink (opening the file, if any) and the level. Safe while other
// threads log; an error leaves the previous sink in place.
Status configure_logging(const LogSink& sink, LogLevel level);
void set_log_level(LogLevel level);

namespace detail {
extern std::atomic<int> g_log_level;
void write_log(LogLevel level, const std::source_location& where, fmt::string_view format, fmt::format_args args);

// A format string checked at compile time, carrying the caller's location.
template <typename... Args>
struct LogFormat {
  template <typename S>
  consteval LogFormat(const S& s, std::source_location loc = std::source_location::current())  // NOLINT: implicit by design
      : format(s), where(loc) {}
  fmt::format_string<Args...> format;
  std::source_location where;
};

template <typename... Args>
void log(LogLevel level, const LogFormat<Args...>& f, Args&&... args) {
  if (static_cast<int>(level) < g_log_level.load(std::memory_order_relaxed)) return;
  write_log(level, f.where, f.format, fmt::make_format_args(args...));
}
}  // namespace detail

inline bool log_enabled(LogLevel level) {
  return static_cast<int>(level) >= detail::g_log_level.load(std::memory_order_relaxed);
}

template <typename... Args>
void log_trace(detail::LogFormat<std::type_identity_t<Args>...> f, Args&&... args) {
  detail::log<Args...>(LogLevel::kTrace, f, std::forward<Args>(args)...);
}
template <typename... Args>
void log_debug(detail::LogFormat<std::type_identity_t<Args>...> f, Args&&... args) {
  detail::log<Args...>(LogLevel::kDebug, f, std::forward<Args>(args)...);
}
template <typename... Args>
void log_info(detail::LogFormat<std::type_identity_t<Args>...> f, Args&&... args) {
  detail::log<Args...>(LogLevel::kInfo, f, std::forward<Args>(args)...);
}
template <typename... Args>
void log_warn(detail::LogFormat<std::type_identity_t<Args>...> f, Args&&... args) {
  detail::log<Args...>(LogLevel::kWarn, f, std::forward<Args>(args)...);
}
template <typename... Args>
void log_error(detail::LogFormat<std::type_identity_t<Args>...> f, Args&&... args) {
  detail::log<Args...>(LogLevel::kError, f, std::forward<Args>(args)...);
}

}  // namespace kindling::vmm
