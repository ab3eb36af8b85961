#include "control/key_quota.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace kindling::control {

double KeyQuota::burst() const {
  return config_.create_burst > 0 ? config_.create_burst : std::max(1.0, config_.creates_per_second);
}

Status KeyQuota::check_live(const std::string& key, int live_for_key) const {
  (void)key;
  if (config_.max_live_sessions <= 0 || live_for_key < config_.max_live_sessions) return ok_status();
  Error e{"this API key already holds " + std::to_string(live_for_key) + " live sessions, its limit (" +
              std::to_string(config_.max_live_sessions) + ", --key-max-sessions); release one and retry",
          "session_limit"};
  e.retry_after_seconds = 1;  // a release frees the slot at once
  return e;
}

Status KeyQuota::take_create(const std::string& key, SteadyClock::time_point now) {
  if (config_.creates_per_second <= 0) return ok_status();
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst(), now});
  Bucket& b = it->second;
  if (!fresh) {
    double elapsed = std::chrono::duration<double>(now - b.refilled_at).count();
    b.tokens = std::min(burst(), b.tokens + std::max(0.0, elapsed) * config_.creates_per_second);
    b.refilled_at = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return ok_status();
  }
  double wait = (1.0 - b.tokens) / config_.creates_per_second;
  char rate[32];
  std::snprintf(rate, sizeof rate, "%g", config_.creates_per_second);
  Error e{std::string("this API key creates sessions faster than its limit (") + rate +
              " per second, --key-create-rate)",
          "rate_limited"};
  e.retry_after_seconds = std::max(1, static_cast<int>(std::ceil(wait)));
  return e;
}

}  // namespace kindling::control
