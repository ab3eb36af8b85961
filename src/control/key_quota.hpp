// Per-API-key limits on session creation: how many live sessions a key may
// hold, and how fast it may create them (a token bucket). Past either, a
// create is refused with a code that names the limit and a time to retry.
#pragma once

#include <map>
#include <string>

#include "common/clock.hpp"
#include "common/result.hpp"

namespace kindling::control {

struct KeyQuotaConfig {
  int max_live_sessions = 0;  // per key; 0 = no per-key limit
  double creates_per_second = 0;  // per key; 0 = no rate limit
  double create_burst = 0;        // bucket size; 0 = max(1, creates_per_second)
};

class KeyQuota {
 public:
  explicit KeyQuota(KeyQuotaConfig config) : config_(config) {}

  // "session_limit" if `key` already holds its maximum of live sessions.
  Status check_live(const std::string& key, int live_for_key) const;
  // Takes one create from `key`'s bucket, or answers "rate_limited" with the
  // seconds until the bucket holds one again.
  Status take_create(const std::string& key, SteadyClock::time_point now);

  const KeyQuotaConfig& config() const { return config_; }

 private:
  struct Bucket {
    double tokens;
    SteadyClock::time_point refilled_at;
  };
  double burst() const;

  KeyQuotaConfig config_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace kindling::control
