// virtio-net against a guest memory image, with a datagram socketpair
// standing in for the tap (one read = one frame, like a tap).
#include "vmm/devices/virtio_net/net.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace kindling::vmm {
namespace {

constexpr uint64_t kRxDesc = 0x1000, kRxAvail = 0x2000, kRxUsed = 0x3000;
constexpr uint64_t kTxDesc = 0x4000, kTxAvail = 0x5000, kTxUsed = 0x6000;
constexpr uint64_t kFrame = 0x10000, kRxBuf = 0x20000;

class NetTest : public ::testing::Test {
 protected:
  void SetUp() override { start(); }
  void start(NetLimiters limiters = {}) {
    if (peer_ >= 0) ::close(peer_);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    peer_ = sv[1];
    dev_ = std::make_shared<VirtioNet>(UniqueFd(sv[0]), std::array<uint8_t, 6>{6, 0, 10, 0, 0, 2}, std::move(limiters));
    VirtioActivation a;
    a.memory = &mem;
    a.acked_features = kVirtioFVersion1 | kVirtioNetFMac;
    a.queues = {VirtqueueConfig{16, 16, true, kRxDesc, kRxAvail, kRxUsed},
                VirtqueueConfig{16, 16, true, kTxDesc, kTxAvail, kTxUsed}};
    a.fail = [this](const std::string& why) { failure = why; };
    dev_->activate(a);
  }
  void TearDown() override { ::close(peer_); }
  void tx(uint32_t len, uint16_t flags = 0) {
    (void)mem.write_obj(kTxDesc, VirtqDesc{kFrame, len, flags, 0});
    (void)mem.write_obj<uint16_t>(kTxAvail + 4 + 2 * (tx_ % 16), 0);
    (void)mem.write_obj<uint16_t>(kTxAvail + 2, ++tx_);
    dev_->queue_notify(1);
  }
  void post_rx(uint32_t len) {
    (void)mem.write_obj(kRxDesc, VirtqDesc{kRxBuf, len, kVirtqDescFWrite, 0});
    (void)mem.write_obj<uint16_t>(kRxAvail + 4 + 2 * (rx_ % 16), 0);
    (void)mem.write_obj<uint16_t>(kRxAvail + 2, ++rx_);
  }

  GuestMemory mem = GuestMemory::create(1 << 20).value();
  std::shared_ptr<VirtioNet> dev_;
  int peer_ = -1;
  std::string failure;
  uint16_t tx_ = 0, rx_ = 0;
};

// 100 bytes per second on a fake clock the test moves.
std::shared_ptr<RateLimiter> hundred_bytes_per_second(std::atomic<int64_t>& now_us) {
  RateLimiterConfig c;
  c.bandwidth = TokenBucketConfig{100, 0, 1000};
  return RateLimiter::create(c, [&now_us] { return now_us.load(); }).value();
}

uint16_t used_idx(const GuestMemory& mem, uint64_t used_ring) { return *mem.read_obj<uint16_t>(used_ring + 2); }

TEST_F(NetTest, FramesPassBothWaysWithoutTheHeader) {
  std::memset(mem.slice(kFrame, 12)->data(), 0, 12);
  std::memset(mem.slice(kFrame + 12, 60)->data(), 0xab, 60);
  tx(12 + 60);
  char buf[2048];
  EXPECT_EQ(::recv(peer_, buf, sizeof(buf), 0), 60);
  EXPECT_EQ(static_cast<uint8_t>(buf[0]), 0xab);

  post_rx(2048);
  std::string frame(64, 'f');
  ASSERT_EQ(::send(peer_, frame.data(), frame.size(), 0), 64);
  // The edge-triggered tap callback is the event loop's; a TX kick also drains RX.
  tx(12 + 60);
  EXPECT_EQ(*mem.read_obj<uint16_t>(kRxUsed + 2), 0) << "the device must wait for the tap to be readable";
  EXPECT_EQ(failure, "");
}

TEST_F(NetTest, TapFramesReachRxBuffersThroughTheDeviceThread) {
  auto loop = DeviceEventLoop::create().value();
  ASSERT_TRUE(dev_->start_backend(*loop));
  loop->start({});
  post_rx(2048);
  dev_->queue_notify(0);
  std::string frame(64, 'f');
  ASSERT_EQ(::send(peer_, frame.data(), frame.size(), 0), 64);
  for (int i = 0; i < 200 && *mem.read_obj<uint16_t>(kRxUsed + 2) == 0; ++i) ::usleep(10'000);
  loop->stop();
  ASSERT_EQ(*mem.read_obj<uint16_t>(kRxUsed + 2), 1);
  EXPECT_EQ(*mem.read_obj<uint32_t>(kRxUsed + 8), 12u + 64u);
  EXPECT_EQ(*mem.read_obj<uint8_t>(kRxBuf + 10), 1);  // num_buffers
  EXPECT_EQ(*mem.read_obj<uint8_t>(kRxBuf + 12), 'f');
}

TEST_F(NetTest, RxBufferTooSmallForAFrameFailsTheDevice) {
  auto loop = DeviceEventLoop::create().value();
  ASSERT_TRUE(dev_->start_backend(*loop));
  loop->start({});
  post_rx(20);
  std::string frame(64, 'f');
  ASSERT_EQ(::send(peer_, frame.data(), frame.size(), 0), 64);
  for (int i = 0; i < 200 && !dev_->failed(); ++i) ::usleep(10'000);
  loop->stop();
  EXPECT_NE(failure.find("too small"), std::string::npos) << failure;
}

TEST_F(NetTest, OversizedFrameIsDroppedAndWritableTxChainFails) {
  tx(12 + kMaxFrame + 1);
  EXPECT_EQ(dev_->tx_dropped(), 1u);
  EXPECT_EQ(failure, "");
  tx(100, kVirtqDescFWrite);
  EXPECT_NE(failure.find("TX chain has device-writable buffers"), std::string::npos) << failure;
}

// An indirect table may hold 32768 descriptors; the device takes at most
// kNetMaxSegments per frame, so readv/writev never get an unbounded iovec array.
TEST(NetFrame, ChainsAreBoundedAndTyped) {
  DescriptorChain tx;
  for (size_t i = 0; i <= kNetMaxSegments; ++i) tx.readable.push_back({0x1000 + i, 1});
  tx.readable_bytes = tx.readable.size();
  auto too_many = parse_net_tx(tx);
  ASSERT_FALSE(too_many);
  EXPECT_NE(too_many.error().message.find("at most 256"), std::string::npos) << too_many.error().message;
  tx.readable.pop_back();
  tx.readable_bytes = tx.readable.size();
  auto ok = parse_net_tx(tx);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->len, kNetMaxSegments - kVirtioNetHdrSize);
  EXPECT_EQ(ok->frame.size(), kNetMaxSegments - kVirtioNetHdrSize);  // the header's 12 one-byte buffers skipped
  EXPECT_EQ(ok->frame.front().addr, 0x1000u + kVirtioNetHdrSize);

  DescriptorChain header_only;
  header_only.readable = {{0x1000, kVirtioNetHdrSize}};
  header_only.readable_bytes = kVirtioNetHdrSize;
  EXPECT_TRUE(parse_net_tx(header_only)->drop);

  DescriptorChain rx;
  rx.writable = {{0x2000, 10}, {0x3000, 100000}};
  rx.writable_bytes = 100010;
  auto space = parse_net_rx(rx);
  ASSERT_TRUE(space);
  EXPECT_EQ(space->capacity, kMaxFrame);  // never more than one frame's room
  ASSERT_EQ(space->frame.size(), 1u);
  EXPECT_EQ(space->frame[0].addr, 0x3000u + 2);  // the header spans both buffers
  EXPECT_EQ(space->frame[0].len, kMaxFrame);
  rx.readable = {{0x4000, 1}};
  rx.readable_bytes = 1;
  EXPECT_FALSE(parse_net_rx(rx));
}

TEST_F(NetTest, TxLimiterLeavesFramesInTheRingUntilTokensReturn) {
  std::atomic<int64_t> now{0};
  auto limiter = hundred_bytes_per_second(now);
  start(NetLimiters{nullptr, limiter});
  char buf[2048];
  tx(12 + 60);  // 60 of the 100 bytes
  EXPECT_EQ(::recv(peer_, buf, sizeof(buf), 0), 60);
  tx(12 + 60);  // 40 left: over budget
  EXPECT_EQ(::recv(peer_, buf, sizeof(buf), 0), -1) << "sent despite the limiter";
  EXPECT_EQ(used_idx(mem, kTxUsed), 1) << "a throttled frame must stay in the guest's ring";
  EXPECT_EQ(limiter->throttled_total(), 1u);
  now = 1'000'000;
  dev_->queue_notify(0);  // what the limiter's timer does
  EXPECT_EQ(::recv(peer_, buf, sizeof(buf), 0), 60);
  EXPECT_EQ(used_idx(mem, kTxUsed), 2);
  EXPECT_EQ(failure, "");
}

// A tap frame's length is known once read: the frame over budget is read
// into the guest's buffer but held back from the used ring, and nothing
// more is read from the tap until tokens return.
TEST_F(NetTest, RxLimiterHoldsAReadFrameUntilTokensReturn) {
  std::atomic<int64_t> now{0};
  auto limiter = hundred_bytes_per_second(now);
  start(NetLimiters{limiter, nullptr});
  auto loop = DeviceEventLoop::create().value();
  ASSERT_TRUE(dev_->start_backend(*loop));
  loop->start({});
  post_rx(2048);
  post_rx(2048);
  post_rx(2048);
  dev_->queue_notify(0);
  std::string frame(64, 'f');
  ASSERT_EQ(::send(peer_, frame.data(), frame.size(), 0), 64);
  for (int i = 0; i < 200 && used_idx(mem, kRxUsed) == 0; ++i) ::usleep(10'000);
  ASSERT_EQ(used_idx(mem, kRxUsed), 1);
  ASSERT_EQ(::send(peer_, frame.data(), frame.size(), 0), 64);  // 36 tokens left
  ASSERT_EQ(::send(peer_, frame.data(), frame.size(), 0), 64);
  ::usleep(200'000);
  EXPECT_EQ(used_idx(mem, kRxUsed), 1) << "delivered despite the limiter";
  now = 1'000'000;
  dev_->queue_notify(0);  // what the limiter's timer does: the held frame goes
  EXPECT_EQ(used_idx(mem, kRxUsed), 2);
  now = 2'000'000;
  dev_->queue_notify(0);  // and the next one is read
  EXPECT_EQ(used_idx(mem, kRxUsed), 3);
  loop->stop();
  EXPECT_EQ(*mem.read_obj<uint32_t>(kRxUsed + 4 + 8 * 1 + 4), 12u + 64u);
  EXPECT_EQ(failure, "");
}

TEST_F(NetTest, ConfigSpaceHoldsTheMac) {
  uint8_t mac[6];
  dev_->read_config(0, mac);
  EXPECT_EQ(mac[2], 10);
  EXPECT_EQ(mac[5], 2);
  EXPECT_TRUE(parse_mac("06:00:0A:00:00:02"));
  EXPECT_FALSE(parse_mac("06:00:0a:00:00"));
  EXPECT_FALSE(parse_mac("06-00-0a-00-00-02"));
}

}  // namespace
}  // namespace kindling::vmm
