// virtio-vsock TX parsing and the device's answers to a misbehaving guest,
// against a guest memory image (no VM, no device thread).
#include "vmm/devices/virtio_vsock/vsock.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

namespace kindling::vmm {
namespace {

constexpr uint64_t kRxDesc = 0x1000, kRxAvail = 0x2000, kRxUsed = 0x3000;
constexpr uint64_t kTxDesc = 0x4000, kTxAvail = 0x5000, kTxUsed = 0x6000;
constexpr uint64_t kPkt = 0x10000, kRxBuf = 0x20000;

class VsockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = "/tmp/kindling-vsock-test-" + std::to_string(::getpid());
    ::unlink(path_.c_str());
    dev_ = VirtioVsock::create(3, path_).value();
    VirtioActivation a;
    a.memory = &mem;
    a.acked_features = kVirtioFVersion1;
    a.queues = {VirtqueueConfig{16, 16, true, kRxDesc, kRxAvail, kRxUsed},
                VirtqueueConfig{16, 16, true, kTxDesc, kTxAvail, kTxUsed},
                VirtqueueConfig{16, 16, true, 0x7000, 0x8000, 0x9000}};
    a.fail = [this](const std::string& why) { failure = why; };
    dev_->activate(a);
  }
  void TearDown() override { dev_.reset(); }

  void send(VsockHeader h, uint32_t carried) {
    (void)mem.write_obj(kPkt, h);
    (void)mem.write_obj(kTxDesc, VirtqDesc{kPkt, static_cast<uint32_t>(sizeof(h) + carried), 0, 0});
    (void)mem.write_obj<uint16_t>(kTxAvail + 4 + 2 * (tx_ % 16), 0);
    (void)mem.write_obj<uint16_t>(kTxAvail + 2, ++tx_);
    dev_->queue_notify(1);
  }
  void post_rx() {
    (void)mem.write_obj(kRxDesc, VirtqDesc{kRxBuf, 4096, kVirtqDescFWrite, 0});
    (void)mem.write_obj<uint16_t>(kRxAvail + 4 + 2 * (rx_ % 16), 0);
    (void)mem.write_obj<uint16_t>(kRxAvail + 2, ++rx_);
    dev_->queue_notify(0);
  }
  static VsockHeader hdr(uint16_t op, uint32_t len = 0) {
    VsockHeader h{};
    h.src_cid = 3;
    h.dst_cid = 2;
    h.src_port = 1000;
    h.dst_port = 5000;
    h.len = len;
    h.type = kVsockTypeStream;
    h.op = op;
    h.buf_alloc = 4096;
    return h;
  }

  GuestMemory mem = GuestMemory::create(1 << 20).value();
  std::string path_;
  std::shared_ptr<VirtioVsock> dev_;
  std::string failure;
  uint16_t tx_ = 0, rx_ = 0;
};

TEST_F(VsockTest, PacketClaimingMoreThanItCarriesFailsTheDevice) {
  send(hdr(kVsockOpRw, 100), 10);
  EXPECT_NE(failure.find("claims 100 bytes"), std::string::npos) << failure;
}

TEST_F(VsockTest, OversizedPacketFailsTheDevice) {
  send(hdr(kVsockOpRw, kVsockMaxPayload + 1), kVsockMaxPayload + 1);
  EXPECT_NE(failure.find("over the limit"), std::string::npos) << failure;
}

TEST_F(VsockTest, DataForAnUnknownConnectionIsAnsweredWithReset) {
  send(hdr(kVsockOpRw, 8), 8);
  EXPECT_EQ(failure, "");
  post_rx();
  EXPECT_EQ(*mem.read_obj<uint16_t>(kRxUsed + 2), 1);
  auto reply = mem.read_obj<VsockHeader>(kRxBuf).value();
  EXPECT_EQ(reply.op, kVsockOpRst);
  EXPECT_EQ(reply.src_port, 5000u);
  EXPECT_EQ(reply.dst_port, 1000u);
  EXPECT_EQ(reply.dst_cid, 3u);
}

TEST_F(VsockTest, SpoofedSourceCidIsReset) {
  VsockHeader h = hdr(kVsockOpRequest);
  h.src_cid = 99;
  send(h, 0);
  post_rx();
  EXPECT_EQ(mem.read_obj<VsockHeader>(kRxBuf).value().op, kVsockOpRst);
}

TEST(VsockPacket, ParserRefusesShortAndWritableChains) {
  GuestMemory mem = GuestMemory::create(1 << 16).value();
  DescriptorChain short_chain;
  short_chain.readable = {{0x100, 20}};
  short_chain.readable_bytes = 20;
  EXPECT_FALSE(parse_vsock_tx(mem, short_chain));
  DescriptorChain writable;
  writable.readable = {{0x100, 44}};
  writable.readable_bytes = 44;
  writable.writable = {{0x200, 8}};
  writable.writable_bytes = 8;
  EXPECT_FALSE(parse_vsock_tx(mem, writable));
}

}  // namespace
}  // namespace kindling::vmm
