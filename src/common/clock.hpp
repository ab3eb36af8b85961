// Wall-clock and monotonic time helpers used in records and timings.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace kindling {

using SteadyClock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

// Milliseconds since the Unix epoch.
std::int64_t unix_millis(SystemClock::time_point t = SystemClock::now());

// RFC 3339 / ISO 8601 in UTC with milliseconds: 2026-12-03T17:02:03.123Z
std::string iso8601_utc(std::int64_t unix_ms);

// Milliseconds between two steady time points, as a double.
inline double millis_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace kindling
