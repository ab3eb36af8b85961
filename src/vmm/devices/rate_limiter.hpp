// Token buckets as in Firecracker's rate limiter API: a bandwidth bucket
// (bytes) and an ops bucket (requests), each `size` tokens refilled at
// size/refill_time, plus a one-time burst that does not refill. A device
// asks consume() before each request; a refusal arms a timerfd, and the
// device thread retries the deferred request when it fires. The guest
// cannot queue more than one deferred request per device: the rest stay in
// its own ring.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "vmm/snapshot/snapshot_format.hpp"
#include "vmm/vmm_config.hpp"

namespace kindling::vmm {

class TokenBucket {
 public:
  TokenBucket(const TokenBucketConfig& c, int64_t now_us);
  // Takes `n` tokens when there are enough. A request larger than the whole
  // bucket passes once the bucket is full and leaves a debt, so it is slowed
  // but never starved.
  bool try_consume(uint64_t n, int64_t now_us);
  void take(uint64_t n, int64_t now_us);  // unconditionally, burst first; may leave a debt
  // Microseconds until try_consume(n) could succeed (0: now).
  int64_t wait_us(uint64_t n, int64_t now_us);
  // Snapshots: config and contents as of `now_us` (refilled first); a
  // restored bucket starts refilling at the `now_us` it is restored at.
  TokenBucketSavedState save(int64_t now_us);
  static TokenBucket restore(const TokenBucketSavedState& s, int64_t now_us);
  const TokenBucketConfig& config() const { return config_; }

 private:
  void refill(int64_t now_us);
  double size_;
  double per_us_;
  double tokens_;
  double burst_;
  int64_t last_us_;
  TokenBucketConfig config_;
};

class RateLimiter {
 public:
  using Clock = std::function<int64_t()>;
  static Result<std::shared_ptr<RateLimiter>> create(const RateLimiterConfig& c, Clock now = {});

  // One operation carrying `bytes`: true to go ahead (tokens taken); false
  // when throttled, with the timer armed for when it could pass.
  bool consume(uint64_t bytes);
  // Takes `bytes` from the bandwidth bucket whatever it holds, leaving a
  // debt the next consume() waits out. For work whose size is known only
  // once done: a tap's next frame is read before anyone knows its length.
  void charge(uint64_t bytes);
  int timer_fd() const { return timer_.get(); }
  void on_timer();  // drains the timerfd; the caller then retries
  uint64_t throttled_total() const { return throttled_; }
  // Snapshots (device thread held still): the buckets' config and contents.
  // A restored limiter has no timer armed; the device's first kick after a
  // restore retries whatever was deferred and arms it again if need be.
  RateLimiterSavedState save();
  static Result<std::shared_ptr<RateLimiter>> restore(const RateLimiterSavedState& s, Clock now = {});
  RateLimiterConfig config() const;

 private:
  RateLimiter() = default;
  Clock now_;
  std::optional<TokenBucket> bandwidth_;
  std::optional<TokenBucket> ops_;
  UniqueFd timer_;
  uint64_t throttled_ = 0;
};

}  // namespace kindling::vmm
