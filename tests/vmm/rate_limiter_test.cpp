// Token buckets on a fake clock, the timer a refusal arms, and a device
// that defers a throttled request and finishes it on retry.
#include "vmm/devices/rate_limiter.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>

#include "vmm/devices/virtio_rng/entropy.hpp"

namespace kindling::vmm {
namespace {

TEST(TokenBucket, RefillsAtSizePerRefillTime) {
  TokenBucket b({1000, 0, 1000}, 0);  // 1000 tokens per second
  EXPECT_TRUE(b.try_consume(1000, 0));
  EXPECT_FALSE(b.try_consume(1, 0));
  EXPECT_NEAR(b.wait_us(100, 0), 100'000, 10);
  EXPECT_FALSE(b.try_consume(600, 500'000));
  EXPECT_TRUE(b.try_consume(500, 500'000));
  EXPECT_TRUE(b.try_consume(1000, 10'000'000));  // never more than `size` saved up
  EXPECT_FALSE(b.try_consume(1, 10'000'000));
}

TEST(TokenBucket, OneTimeBurstIsSpentFirstAndNeverRefills) {
  TokenBucket b({100, 400, 1000}, 0);
  EXPECT_TRUE(b.try_consume(450, 0));  // 400 burst + 50 tokens
  EXPECT_TRUE(b.try_consume(50, 0));
  EXPECT_FALSE(b.try_consume(1, 0));
  EXPECT_TRUE(b.try_consume(100, 1'000'000));
  EXPECT_FALSE(b.try_consume(1, 1'000'000));
}

TEST(TokenBucket, OversizedRequestPassesWhenFullAndLeavesADebt) {
  TokenBucket b({100, 0, 100}, 0);
  EXPECT_TRUE(b.try_consume(300, 0));
  EXPECT_FALSE(b.try_consume(1, 100'000));        // paid back 100 of the 200 debt
  EXPECT_TRUE(b.try_consume(1, 300'000 + 10'000));
}

// Snapshots: a limiter saved mid-use and restored in another "process" (a
// clock that starts elsewhere) holds what it held and refills from then on.
TEST(RateLimiter, SavedBucketsRestoreWithTheirContentsAndConfig) {
  std::atomic<int64_t> now{5'000'000};
  RateLimiterConfig c;
  c.bandwidth = TokenBucketConfig{1000, 300, 1000};  // 1000 bytes/s, 300 once
  c.ops = TokenBucketConfig{10, 0, 1000};
  auto l = RateLimiter::create(c, [&] { return now.load(); }).value();
  ASSERT_TRUE(l->consume(900));  // burst 300, then 600 tokens: 400 left
  const RateLimiterSavedState saved = l->save();
  ASSERT_TRUE(saved.bandwidth && saved.ops);
  EXPECT_EQ(saved.bandwidth->tokens, 400);
  EXPECT_EQ(saved.bandwidth->burst_left, 0u);
  EXPECT_EQ(saved.bandwidth->size, 1000u);
  EXPECT_EQ(saved.bandwidth->refill_time_ms, 1000u);
  EXPECT_EQ(saved.ops->tokens, 9);

  std::atomic<int64_t> later{77};  // another process's monotonic clock
  auto r = RateLimiter::restore(saved, [&] { return later.load(); }).value();
  EXPECT_FALSE(r->consume(500)) << "a restored bucket must not come back full";
  EXPECT_TRUE(r->consume(400));
  later += 100'000;  // 100 bytes refilled
  EXPECT_FALSE(r->consume(150));
  EXPECT_TRUE(r->consume(100));
  const RateLimiterConfig back = r->config();
  ASSERT_TRUE(back.bandwidth && back.ops);
  EXPECT_EQ(back.bandwidth->one_time_burst, 300u);
  EXPECT_EQ(back.ops->size, 10u);
}

TEST(RateLimiter, RefusalArmsTheTimer) {
  int64_t now = 0;
  RateLimiterConfig c;
  c.ops = TokenBucketConfig{2, 0, 50};
  c.bandwidth = TokenBucketConfig{1 << 20, 0, 1000};
  auto r = RateLimiter::create(c, [&] { return now; }).value();
  EXPECT_TRUE(r->consume(100));
  EXPECT_TRUE(r->consume(100));
  EXPECT_FALSE(r->consume(100));
  EXPECT_EQ(r->throttled_total(), 1u);
  pollfd p{r->timer_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 2000), 1) << "the timer never fired";
  r->on_timer();
  now = 50'000;
  EXPECT_TRUE(r->consume(100));
}

TEST(RateLimiter, ThrottledEntropyRequestIsDeferredThenServed) {
  GuestMemory mem = GuestMemory::create(1 << 20).value();
  bool allow = false;
  auto dev = std::make_shared<VirtioEntropy>([&](uint64_t) { return allow; });
  VirtioActivation a;
  a.memory = &mem;
  a.acked_features = kVirtioFVersion1;
  a.queues = {VirtqueueConfig{8, 8, true, 0x1000, 0x2000, 0x3000}};
  dev->activate(a);
  ASSERT_TRUE(mem.write_obj(0x1000, VirtqDesc{0x10000, 32, kVirtqDescFWrite, 0}));
  ASSERT_TRUE(mem.write_obj<uint16_t>(0x2000 + 2, 1));
  dev->queue_notify(0);
  EXPECT_EQ(*mem.read_obj<uint16_t>(0x3000 + 2), 0) << "served despite the limiter";
  allow = true;
  dev->retry();
  EXPECT_EQ(*mem.read_obj<uint16_t>(0x3000 + 2), 1);
  EXPECT_EQ(*mem.read_obj<uint32_t>(0x3000 + 8), 32u);
}

}  // namespace
}  // namespace kindling::vmm
