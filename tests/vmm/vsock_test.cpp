// virtio-vsock TX parsing and the device's answers to a misbehaving guest,
// against a guest memory image (no VM, no device thread).
#include "vmm/devices/virtio_vsock/vsock.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/unique_fd.hpp"

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

  // Ops of the packets the device put in RX buffers, one 4 KiB buffer at a time.
  std::vector<VsockHeader> drain_rx(int max) {
    std::vector<VsockHeader> out;
    for (int i = 0; i < max; ++i) {
      const uint16_t before = *mem.read_obj<uint16_t>(kRxUsed + 2);
      post_rx();
      if (*mem.read_obj<uint16_t>(kRxUsed + 2) == before) {
        --rx_;  // not taken: withdraw it so the ring stays within its size
        (void)mem.write_obj<uint16_t>(kRxAvail + 2, rx_);
        break;
      }
      out.push_back(mem.read_obj<VsockHeader>(kRxBuf).value());
    }
    return out;
  }
  uint16_t tx_used() { return *mem.read_obj<uint16_t>(kTxUsed + 2); }

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

// Each refused packet owes the guest an RST; a guest that never posts RX
// buffers must not make that queue grow: TX stops being consumed at
// kMaxControlPackets and resumes as RX buffers take the answers.
TEST_F(VsockTest, ControlPacketsOwedToAGuestThatNeverReadsAreBounded) {
  const size_t limit = VirtioVsock::kMaxControlPackets;
  for (size_t i = 0; i < limit + 8; ++i) send(hdr(kVsockOpRw, 8), 8);
  EXPECT_EQ(failure, "");
  EXPECT_EQ(tx_used(), limit);  // the last 8 wait in the ring, within its 16 entries
  post_rx();
  EXPECT_EQ(mem.read_obj<VsockHeader>(kRxBuf).value().op, kVsockOpRst);
  EXPECT_EQ(tx_used(), limit + 1);  // one answer out, one more packet in
  EXPECT_EQ(failure, "");
}

// A guest that ignores the credit we advertise (kBufAlloc) while the host
// side does not read: what the socket cannot take is buffered only up to
// kBufAlloc, then the connection is reset. The device itself keeps working.
TEST_F(VsockTest, GuestOverrunningItsCreditIsResetNotBuffered) {
  const std::string listen_path = path_ + "_5000";
  ::unlink(listen_path.c_str());
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, listen_path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);  // never accepted: nobody reads
  auto loop = DeviceEventLoop::create().value();  // not started: registrations only
  ASSERT_TRUE(dev_->start_backend(*loop));

  send(hdr(kVsockOpRequest), 0);
  std::vector<VsockHeader> got = drain_rx(4);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].op, kVsockOpResponse);
  EXPECT_EQ(got[0].buf_alloc, VirtioVsock::kBufAlloc);

  constexpr uint32_t kChunk = 32 * 1024;
  std::vector<uint8_t> payload(kChunk, 0x5a);
  ASSERT_TRUE(mem.write(kPkt + sizeof(VsockHeader), payload));
  bool reset = false;
  uint64_t sent = 0;
  // Socket buffer plus kBufAlloc is well under 4 MiB.
  for (int i = 0; i < 128 && !reset; ++i) {
    send(hdr(kVsockOpRw, kChunk), kChunk);
    sent += kChunk;
    for (const VsockHeader& h : drain_rx(4)) reset |= h.op == kVsockOpRst && h.src_port == 5000 && h.dst_port == 1000;
  }
  EXPECT_TRUE(reset) << "no reset after " << sent << " bytes";
  EXPECT_GT(sent, VirtioVsock::kBufAlloc);  // buffering did happen first
  EXPECT_EQ(failure, "");
  // The connection is gone: more data for it is answered with a reset.
  send(hdr(kVsockOpRw, 8), 8);
  got = drain_rx(4);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].op, kVsockOpRst);
  dev_.reset();
  ::unlink(listen_path.c_str());
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

// A restored device owes the driver one TRANSPORT_RESET (id 0) on the event
// queue: it waits for an event buffer if none is posted, is sent once, and a
// plain activation (no restore) sends none.
TEST_F(VsockTest, RestoredDeviceSendsOneTransportResetWhenAnEventBufferIsThere) {
  constexpr uint64_t kEvDesc = 0x7000, kEvAvail = 0x8000, kEvUsed = 0x9000, kEvBuf = 0x30000;
  auto ev_used = [&] { return *mem.read_obj<uint16_t>(kEvUsed + 2); };
  uint16_t ev_avail = 0;
  auto post_event_buffer = [&] {
    (void)mem.write_obj<uint32_t>(kEvBuf, 0xffffffff);
    (void)mem.write_obj(kEvDesc, VirtqDesc{kEvBuf, 8, kVirtqDescFWrite, 0});
    (void)mem.write_obj<uint16_t>(kEvAvail + 4 + 2 * (ev_avail % 16), 0);
    (void)mem.write_obj<uint16_t>(kEvAvail + 2, ++ev_avail);
  };
  post_event_buffer();
  dev_->queue_notify(2);
  EXPECT_EQ(ev_used(), 0) << "an activated (not restored) device sent an event";

  // Restore: the saved positions of the event queue are where the driver left them.
  VirtioActivation a;
  a.memory = &mem;
  a.acked_features = kVirtioFVersion1;
  a.queues = {VirtqueueConfig{16, 16, true, kRxDesc, kRxAvail, kRxUsed}, VirtqueueConfig{16, 16, true, kTxDesc, kTxAvail, kTxUsed},
              VirtqueueConfig{16, 16, true, kEvDesc, kEvAvail, kEvUsed}};
  a.fail = [this](const std::string& why) { failure = why; };
  VirtioDevice::SavedDevice saved;
  saved.queues = {{0, 0, 0}, {0, 0, 0}, {1, 0, 0}};  // the posted event buffer counts as taken: none left
  ASSERT_TRUE(dev_->restore_device(a, saved));
  dev_->queue_notify(1);
  EXPECT_EQ(ev_used(), 0) << "an event without a buffer";
  post_event_buffer();
  dev_->queue_notify(0);  // any queue's kick retries
  ASSERT_EQ(ev_used(), 1);
  EXPECT_EQ(*mem.read_obj<uint32_t>(kEvBuf), 0u);  // VIRTIO_VSOCK_EVENT_TRANSPORT_RESET
  EXPECT_EQ(*mem.read_obj<uint32_t>(kEvUsed + 8), 4u);  // used length: one le32
  post_event_buffer();
  dev_->queue_notify(2);
  EXPECT_EQ(ev_used(), 1) << "a second reset event";
  EXPECT_EQ(failure, "");
}

}  // namespace
}  // namespace kindling::vmm
