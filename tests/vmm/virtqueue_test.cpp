// The hostile-guest rules of the virtqueue walker, each against a guest
// memory image the test writes by hand: bounded chains, loops, addresses and
// lengths outside guest memory (including ones that wrap), protocol
// violations, indirect tables, the used ring and event-index suppression.
#include "vmm/devices/virtio_mmio/virtqueue.hpp"

#include <gtest/gtest.h>

#include "vmm/devices/virtio_rng/entropy.hpp"

namespace kindling::vmm {
namespace {

constexpr uint64_t kDesc = 0x1000, kAvail = 0x2000, kUsed = 0x3000;
constexpr uint16_t kSize = 8;

class VirtqueueTest : public ::testing::Test {
 protected:
  GuestMemory mem = GuestMemory::create(1 << 20).value();
  VirtqueueConfig cfg{kSize, kSize, true, kDesc, kAvail, kUsed};

  void desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0, uint64_t table = kDesc) {
    ASSERT_TRUE(mem.write_obj(table + 16ull * i, VirtqDesc{addr, len, flags, next}));
  }
  void publish(uint16_t slot, uint16_t head, uint16_t idx) {
    ASSERT_TRUE(mem.write_obj<uint16_t>(kAvail + 4 + 2 * slot, head));
    ASSERT_TRUE(mem.write_obj<uint16_t>(kAvail + 2, idx));
  }
  Virtqueue queue(uint64_t features = 0) { return Virtqueue::create(mem, cfg, features).value(); }
  std::string pop_error(Virtqueue& q) {
    auto r = q.pop();
    return r ? std::string("no error") : r.error().message;
  }
};

TEST_F(VirtqueueTest, PopsAChainOfReadableThenWritableBuffers) {
  desc(0, 0x10000, 16, kVirtqDescFNext, 1);
  desc(1, 0x11000, 512, kVirtqDescFWrite | kVirtqDescFNext, 2);
  desc(2, 0x12000, 1, kVirtqDescFWrite);
  publish(0, 0, 1);
  Virtqueue q = queue();
  auto c = q.pop();
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->head, 0);
  ASSERT_EQ((*c)->readable.size(), 1u);
  ASSERT_EQ((*c)->writable.size(), 2u);
  EXPECT_EQ((*c)->writable_bytes, 513u);
  auto empty = q.pop();
  ASSERT_TRUE(empty);
  EXPECT_FALSE(*empty);
}

TEST_F(VirtqueueTest, LoopingChainIsRefused) {
  desc(0, 0x10000, 8, kVirtqDescFNext, 1);
  desc(1, 0x10000, 8, kVirtqDescFNext, 0);
  publish(0, 0, 1);
  Virtqueue q = queue();
  EXPECT_NE(pop_error(q).find("loop"), std::string::npos);
}

TEST_F(VirtqueueTest, SelfLoopIsRefused) {
  desc(3, 0x10000, 8, kVirtqDescFNext, 3);
  publish(0, 3, 1);
  Virtqueue q = queue();
  EXPECT_NE(pop_error(q).find("loop"), std::string::npos);
}

TEST_F(VirtqueueTest, BuffersOutsideGuestMemoryAreRefused) {
  for (auto [addr, len] : {std::pair<uint64_t, uint32_t>{1 << 20, 1}, {(1 << 20) - 4, 8},
                           {0xfffffffffffff000ull, 0x2000}, {0xffffffffffffffffull, 2}, {0xc0000000ull, 16}}) {
    desc(0, addr, len, kVirtqDescFWrite);
    publish(0, 0, 1);
    Virtqueue q = queue();
    EXPECT_NE(pop_error(q).find("outside guest memory"), std::string::npos) << std::hex << addr << "+" << len;
    ASSERT_TRUE(mem.write_obj<uint16_t>(kAvail + 2, 0));
  }
}

TEST_F(VirtqueueTest, IndicesOutsideTheQueueAreRefused) {
  publish(0, kSize, 1);
  Virtqueue q1 = queue();
  EXPECT_NE(pop_error(q1).find("head"), std::string::npos);
  desc(0, 0x10000, 8, kVirtqDescFNext, 200);
  publish(0, 0, 1);
  Virtqueue q2 = queue();
  EXPECT_NE(pop_error(q2).find("next descriptor"), std::string::npos);
}

TEST_F(VirtqueueTest, MoreBuffersThanTheQueueHoldsIsRefused) {
  publish(0, 0, kSize + 1);
  Virtqueue q = queue();
  EXPECT_NE(pop_error(q).find("published"), std::string::npos);
}

TEST_F(VirtqueueTest, ReadableAfterWritableIsRefused) {
  desc(0, 0x10000, 8, kVirtqDescFWrite | kVirtqDescFNext, 1);
  desc(1, 0x11000, 8, 0);
  publish(0, 0, 1);
  Virtqueue q = queue();
  EXPECT_NE(pop_error(q).find("readable buffer after"), std::string::npos);
}

TEST_F(VirtqueueTest, IndirectTablesNeedTheFeatureAndTheSameChecks) {
  constexpr uint64_t kTable = 0x20000;
  desc(0, kTable, 3 * 16, kVirtqDescFIndirect);
  desc(0, 0x10000, 16, kVirtqDescFNext, 1, kTable);
  desc(1, 0x11000, 64, kVirtqDescFWrite | kVirtqDescFNext, 2, kTable);
  desc(2, 0x12000, 1, kVirtqDescFWrite, 0, kTable);
  publish(0, 0, 1);
  Virtqueue without = queue();
  EXPECT_NE(pop_error(without).find("VIRTIO_F_INDIRECT_DESC"), std::string::npos);

  Virtqueue with = queue(kVirtioFIndirectDesc);
  auto c = with.pop();
  ASSERT_TRUE(c && *c) << (c ? "" : c.error().message);
  EXPECT_EQ((*c)->readable.size(), 1u);
  EXPECT_EQ((*c)->writable_bytes, 65u);

  // A loop inside the table, a nested table, a bad length, a table outside memory.
  desc(2, 0x12000, 1, kVirtqDescFWrite | kVirtqDescFNext, 0, kTable);
  Virtqueue loop = queue(kVirtioFIndirectDesc);
  EXPECT_NE(pop_error(loop).find("loop"), std::string::npos);
  desc(2, kTable, 16, kVirtqDescFIndirect, 0, kTable);
  Virtqueue nested = queue(kVirtioFIndirectDesc);
  EXPECT_NE(pop_error(nested).find("nested"), std::string::npos);
  desc(0, kTable, 17, kVirtqDescFIndirect);
  Virtqueue odd = queue(kVirtioFIndirectDesc);
  EXPECT_NE(pop_error(odd).find("multiple of 16"), std::string::npos);
  desc(0, 0xffffffffffffff00ull, 0x100, kVirtqDescFIndirect);
  Virtqueue outside = queue(kVirtioFIndirectDesc);
  EXPECT_NE(pop_error(outside).find("outside guest memory"), std::string::npos);
}

TEST_F(VirtqueueTest, RingsMustLieInMemoryAndBeAligned) {
  VirtqueueConfig bad = cfg;
  bad.used_ring = (1 << 20) - 8;
  EXPECT_FALSE(Virtqueue::create(mem, bad, 0));
  bad = cfg;
  bad.desc_table = 0x1008;
  EXPECT_FALSE(Virtqueue::create(mem, bad, 0));
  bad = cfg;
  bad.size = 6;
  EXPECT_FALSE(Virtqueue::create(mem, bad, 0));
  bad = cfg;
  bad.avail_ring = 0xfffffffffffffffeull;
  EXPECT_FALSE(Virtqueue::create(mem, bad, 0));
}

TEST_F(VirtqueueTest, UsedRingAndInterruptSuppression) {
  Virtqueue q = queue();
  ASSERT_TRUE(q.add_used(5, 100));
  EXPECT_EQ(*mem.read_obj<uint16_t>(kUsed + 2), 1);
  EXPECT_EQ(*mem.read_obj<uint32_t>(kUsed + 4), 5u);
  EXPECT_EQ(*mem.read_obj<uint32_t>(kUsed + 8), 100u);
  EXPECT_TRUE(q.needs_interrupt());
  EXPECT_FALSE(q.needs_interrupt());  // nothing new
  ASSERT_TRUE(mem.write_obj<uint16_t>(kAvail, kVirtqAvailFNoInterrupt));
  ASSERT_TRUE(q.add_used(1, 0));
  EXPECT_FALSE(q.needs_interrupt());
  EXPECT_FALSE(q.add_used(kSize, 0));  // never a head the queue cannot have
}

TEST_F(VirtqueueTest, EventIndexAsksForInterruptsOnlyPastUsedEvent) {
  Virtqueue q = queue(kVirtioFEventIdx);
  ASSERT_TRUE(mem.write_obj<uint16_t>(kAvail + 4 + 2 * kSize, 2));  // used_event: interrupt after entry 2
  ASSERT_TRUE(q.add_used(0, 0));
  EXPECT_FALSE(q.needs_interrupt());  // used idx 1
  ASSERT_TRUE(q.add_used(0, 0));
  EXPECT_FALSE(q.needs_interrupt());  // used idx 2
  ASSERT_TRUE(q.add_used(0, 0));
  EXPECT_TRUE(q.needs_interrupt());   // used idx 3 passes used_event 2
  // The device publishes avail_event when it finds the ring empty.
  auto none = q.pop();
  ASSERT_TRUE(none);
  EXPECT_EQ(*mem.read_obj<uint16_t>(kUsed + 4 + 8 * kSize), 0);
}

// A device on top of the walker: failure is DEVICE_NEEDS_RESET, never a crash,
// and one request cannot make it write more than its per-request bound.
TEST_F(VirtqueueTest, EntropyDeviceFailsOnBadChainsAndBoundsRequests) {
  auto dev = std::make_shared<VirtioEntropy>();
  int interrupts = 0;
  std::string failure;
  auto activate = [&] {
    VirtioActivation a;
    a.memory = &mem;
    a.acked_features = kVirtioFVersion1;
    a.queues = {cfg};
    a.signal_used = [&] { ++interrupts; };
    a.fail = [&](const std::string& why) { failure = why; };
    dev->activate(a);
  };
  activate();
  desc(0, 0x40000, 0x80000, kVirtqDescFWrite);  // 512 KiB offered
  publish(0, 0, 1);
  dev->queue_notify(0);
  EXPECT_EQ(failure, "");
  EXPECT_EQ(*mem.read_obj<uint32_t>(kUsed + 8), VirtioEntropy::kMaxBytesPerRequest);
  EXPECT_EQ(interrupts, 1);

  desc(1, 0x40000, 8, kVirtqDescFWrite | kVirtqDescFNext, 1);
  publish(1, 1, 2);
  dev->queue_notify(0);
  EXPECT_NE(failure.find("loop"), std::string::npos);
  EXPECT_TRUE(dev->failed());
  dev->queue_notify(0);  // ignored until reset
  dev->reset();
  EXPECT_FALSE(dev->failed());
}

}  // namespace
}  // namespace kindling::vmm
