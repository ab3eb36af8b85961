#include "vmm/devices/rate_limiter.hpp"

#include <fmt/format.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace kindling::vmm {
namespace {

int64_t monotonic_now_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

}  // namespace

TokenBucket::TokenBucket(const TokenBucketConfig& c, int64_t now_us)
    : size_(static_cast<double>(c.size)),
      per_us_(static_cast<double>(c.size) / (static_cast<double>(c.refill_time) * 1000.0)),
      tokens_(static_cast<double>(c.size)),
      burst_(static_cast<double>(c.one_time_burst)),
      last_us_(now_us),
      config_(c) {}

TokenBucketSavedState TokenBucket::save(int64_t now_us) {
  refill(now_us);
  TokenBucketSavedState s;
  s.size = config_.size;
  s.one_time_burst = config_.one_time_burst;
  s.refill_time_ms = config_.refill_time;
  // Whole tokens: a fraction of a byte or an op is not worth a float in the file.
  s.tokens = static_cast<int64_t>(std::floor(tokens_));
  s.burst_left = static_cast<uint64_t>(std::max(0.0, std::floor(burst_)));
  return s;
}

TokenBucket TokenBucket::restore(const TokenBucketSavedState& s, int64_t now_us) {
  TokenBucket b(TokenBucketConfig{s.size, s.one_time_burst, s.refill_time_ms}, now_us);
  b.tokens_ = static_cast<double>(s.tokens);
  b.burst_ = static_cast<double>(s.burst_left);
  return b;
}

void TokenBucket::refill(int64_t now_us) {
  if (now_us > last_us_) tokens_ = std::min(size_, tokens_ + static_cast<double>(now_us - last_us_) * per_us_);
  last_us_ = std::max(last_us_, now_us);
}

bool TokenBucket::try_consume(uint64_t n, int64_t now_us) {
  refill(now_us);
  double need = static_cast<double>(n);
  const double from_burst = std::min(burst_, need);
  need -= from_burst;
  if (need > 0 && tokens_ < std::min(need, size_)) return false;
  burst_ -= from_burst;
  tokens_ -= need;  // may go negative for an oversized request: a debt
  return true;
}

void TokenBucket::take(uint64_t n, int64_t now_us) {
  refill(now_us);
  double need = static_cast<double>(n);
  const double from_burst = std::min(burst_, need);
  burst_ -= from_burst;
  tokens_ -= need - from_burst;
}

int64_t TokenBucket::wait_us(uint64_t n, int64_t now_us) {
  refill(now_us);
  const double need = std::min(std::max(0.0, static_cast<double>(n) - burst_), size_) - tokens_;
  return need <= 0 ? 0 : static_cast<int64_t>(need / per_us_) + 1;
}

Result<std::shared_ptr<RateLimiter>> RateLimiter::create(const RateLimiterConfig& c, Clock now) {
  std::shared_ptr<RateLimiter> r(new RateLimiter());
  r->now_ = now ? std::move(now) : Clock(monotonic_now_us);
  const int64_t t = r->now_();
  if (c.bandwidth) r->bandwidth_.emplace(*c.bandwidth, t);
  if (c.ops) r->ops_.emplace(*c.ops, t);
  r->timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!r->timer_.valid()) return make_error(fmt::format("rate limiter: timerfd_create: {}", std::strerror(errno)));
  return r;
}

RateLimiterSavedState RateLimiter::save() {
  const int64_t t = now_();
  RateLimiterSavedState s;
  if (bandwidth_) s.bandwidth = bandwidth_->save(t);
  if (ops_) s.ops = ops_->save(t);
  return s;
}

Result<std::shared_ptr<RateLimiter>> RateLimiter::restore(const RateLimiterSavedState& s, Clock now) {
  RateLimiterConfig c;
  if (s.bandwidth) c.bandwidth = TokenBucketConfig{s.bandwidth->size, s.bandwidth->one_time_burst, s.bandwidth->refill_time_ms};
  if (s.ops) c.ops = TokenBucketConfig{s.ops->size, s.ops->one_time_burst, s.ops->refill_time_ms};
  KINDLING_TRY(r, create(c, std::move(now)));
  const int64_t t = r->now_();
  if (s.bandwidth) r->bandwidth_ = TokenBucket::restore(*s.bandwidth, t);
  if (s.ops) r->ops_ = TokenBucket::restore(*s.ops, t);
  return r;
}

RateLimiterConfig RateLimiter::config() const {
  RateLimiterConfig c;
  if (bandwidth_) c.bandwidth = bandwidth_->config();
  if (ops_) c.ops = ops_->config();
  return c;
}

bool RateLimiter::consume(uint64_t bytes) {
  const int64_t t = now_();
  const bool ops_ok = !ops_ || ops_->wait_us(1, t) == 0;
  const bool bw_ok = !bandwidth_ || bytes == 0 || bandwidth_->wait_us(bytes, t) == 0;
  if (ops_ok && bw_ok) {
    if (ops_) ops_->try_consume(1, t);
    if (bandwidth_ && bytes) bandwidth_->try_consume(bytes, t);
    return true;
  }
  ++throttled_;
  int64_t wait = 0;
  if (ops_) wait = std::max(wait, ops_->wait_us(1, t));
  if (bandwidth_ && bytes) wait = std::max(wait, bandwidth_->wait_us(bytes, t));
  itimerspec spec{};
  wait = std::max<int64_t>(wait, 1);
  spec.it_value.tv_sec = wait / 1'000'000;
  spec.it_value.tv_nsec = (wait % 1'000'000) * 1000;
  ::timerfd_settime(timer_.get(), 0, &spec, nullptr);
  return false;
}

void RateLimiter::charge(uint64_t bytes) {
  if (bandwidth_ && bytes) bandwidth_->take(bytes, now_());
}

void RateLimiter::on_timer() {
  uint64_t expirations;
  [[maybe_unused]] ssize_t n = ::read(timer_.get(), &expirations, sizeof(expirations));
}

}  // namespace kindling::vmm
