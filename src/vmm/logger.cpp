#include "vmm/logger.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <mutex>

#include "common/unique_fd.hpp"

namespace kindling::vmm {
namespace detail {
std::atomic<int> g_log_level{static_cast<int>(LogLevel::kInfo)};
}  // namespace detail

namespace {

struct LoggerState {
  std::mutex mu;
  LogSink sink;
  UniqueFd file;  // invalid: stderr
};

// Built on first use, so nothing runs before main().
LoggerState& state() {
  static LoggerState s;
  return s;
}

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warning";
    case LogLevel::kError: return "error";
    case LogLevel::kOff: return "off";
  }
  return "?";
}

// UTC by arithmetic (Howard Hinnant's civil_from_days): gmtime_r would load
// /etc/localtime on its first call, which a vCPU thread's seccomp filter forbids.
void append_utc_timestamp(fmt::memory_buffer& out) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  const int64_t secs = ts.tv_sec;
  int64_t days = secs / 86400;
  int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    days -= 1;
  }
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", year, month, day, sod / 3600,
                 sod % 3600 / 60, sod % 60, ts.tv_nsec / 1'000'000);
}

std::string_view base_name(const char* path) {
  std::string_view p(path);
  size_t slash = p.rfind('/');
  return slash == std::string_view::npos ? p : p.substr(slash + 1);
}

void write_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere left to report it
    data += n;
    len -= static_cast<size_t>(n);
  }
}

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view name) {
  std::string l(name);
  for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (l == "trace") return LogLevel::kTrace;
  if (l == "debug") return LogLevel::kDebug;
  if (l == "info") return LogLevel::kInfo;
  if (l == "warn" || l == "warning") return LogLevel::kWarn;
  if (l == "error") return LogLevel::kError;
  if (l == "off") return LogLevel::kOff;
  return std::nullopt;
}

void set_log_level(LogLevel level) { detail::g_log_level.store(static_cast<int>(level)); }

Status configure_logging(const LogSink& sink, LogLevel level) {
  UniqueFd file;
  if (!sink.path.empty()) {
    file.reset(::open(sink.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!file.valid()) return make_error(fmt::format("Failed to open the log file: {} ({})", std::strerror(errno), sink.path));
  }
  LoggerState& s = state();
  {
    std::lock_guard lock(s.mu);
    s.sink = sink;
    s.file = std::move(file);
  }
  set_log_level(level);
  return ok_status();
}

namespace detail {

void write_log(LogLevel level, const std::source_location& where, fmt::string_view format, fmt::format_args args) {
  fmt::memory_buffer line;
  append_utc_timestamp(line);
  auto out = std::back_inserter(line);
  LoggerState& s = state();
  std::lock_guard lock(s.mu);
  if (!s.file.valid()) {
    fmt::format_to(out, " {} kindling-vmm[{}]: ", level_name(level), s.sink.instance_id);
  } else {
    fmt::format_to(out, " [{}]", s.sink.instance_id);
    if (s.sink.show_level) fmt::format_to(out, " {}", level_name(level));
    if (s.sink.show_origin) fmt::format_to(out, " {}:{}", base_name(where.file_name()), where.line());
    line.push_back(' ');
  }
  try {
    fmt::vformat_to(out, format, args);
  } catch (const std::exception& e) {
    fmt::format_to(out, "(log line not formatted: {})", e.what());
  }
  line.push_back('\n');
  write_all(s.file.valid() ? s.file.get() : 2, line.data(), line.size());
}

}  // namespace detail
}  // namespace kindling::vmm
