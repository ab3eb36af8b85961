#include "agent/agent_log.hpp"

#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace kindling::agent {

namespace {
LogLevel g_level = LogLevel::kInfo;

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kOff: break;
  }
  return "off";
}
}  // namespace

bool parse_log_level(std::string_view name, LogLevel& out) {
  for (auto level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError, LogLevel::kOff}) {
    if (name == level_name(level)) {
      out = level;
      return true;
    }
  }
  return false;
}

void set_log_level(LogLevel level) { g_level = level; }
bool log_enabled(LogLevel level) { return level >= g_level && level != LogLevel::kOff; }

void log_line(LogLevel level, std::string_view message) {
  if (!log_enabled(level)) return;
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  char prefix[96];
  int n = std::snprintf(prefix, sizeof(prefix), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ kindling-agent[%d] %s: ",
                        utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                        now.tv_nsec / 1'000'000, static_cast<int>(getpid()), level_name(level));
  std::string line(prefix, n > 0 ? static_cast<std::size_t>(n) : 0);
  // A line never carries raw control characters from untrusted input.
  for (char c : message.substr(0, 2048)) line += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  line += '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace kindling::agent
