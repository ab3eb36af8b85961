// The agent's log: one line per event on stderr. The agent must stay
// statically linkable with nothing but libc/libstdc++ (issue 5), so it cannot
// use spdlog like the rest of Kindling; this is the few lines it needs.
#pragma once

#include <string_view>

namespace kindling::agent {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// Parses "debug", "info", "warn", "error" or "off".
bool parse_log_level(std::string_view name, LogLevel& out);
void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);

// Writes "<UTC time> kindling-agent[<pid>] <level>: <message>\n" in one write(2),
// so lines from concurrent writers (Chromium shares stderr) do not interleave.
void log_line(LogLevel level, std::string_view message);

inline void log_debug(std::string_view m) { log_line(LogLevel::kDebug, m); }
inline void log_info(std::string_view m) { log_line(LogLevel::kInfo, m); }
inline void log_warn(std::string_view m) { log_line(LogLevel::kWarn, m); }
inline void log_error(std::string_view m) { log_line(LogLevel::kError, m); }

}  // namespace kindling::agent
