#include "control/key_quota.hpp"

#include <gtest/gtest.h>

using kindling::SteadyClock;
using kindling::control::KeyQuota;
using kindling::control::KeyQuotaConfig;

TEST(KeyQuota, NoLimitsAdmitEverything) {
  KeyQuota q(KeyQuotaConfig{});
  auto now = SteadyClock::now();
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(q.check_live("k", i));
    EXPECT_TRUE(q.take_create("k", now));
  }
}

TEST(KeyQuota, LiveLimitNamesItselfAndSaysWhenToRetry) {
  KeyQuota q(KeyQuotaConfig{.max_live_sessions = 2});
  EXPECT_TRUE(q.check_live("k", 1));
  auto refused = q.check_live("k", 2);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "session_limit");
  EXPECT_NE(refused.error().message.find("--key-max-sessions"), std::string::npos);
  EXPECT_GE(refused.error().retry_after_seconds, 1);
}

TEST(KeyQuota, BucketAllowsBurstThenRefillsAtTheRate) {
  KeyQuota q(KeyQuotaConfig{.creates_per_second = 2, .create_burst = 3});
  auto t0 = SteadyClock::now();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(q.take_create("k", t0)) << i;
  auto refused = q.take_create("k", t0);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "rate_limited");
  EXPECT_EQ(refused.error().retry_after_seconds, 1);
  // Another key has its own bucket.
  EXPECT_TRUE(q.take_create("other", t0));
  // Half a second refills one token at 2/s, and no more than one.
  auto t1 = t0 + std::chrono::milliseconds(500);
  EXPECT_TRUE(q.take_create("k", t1));
  EXPECT_FALSE(q.take_create("k", t1));
  // A long pause refills only up to the burst.
  auto t2 = t1 + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(q.take_create("k", t2)) << i;
  EXPECT_FALSE(q.take_create("k", t2));
}

TEST(KeyQuota, SlowRatesGiveLongerRetryTimes) {
  KeyQuota q(KeyQuotaConfig{.creates_per_second = 0.1});
  auto t0 = SteadyClock::now();
  EXPECT_TRUE(q.take_create("k", t0));
  auto refused = q.take_create("k", t0);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().retry_after_seconds, 10);
}
