// The virtio-mmio register protocol, driven the way a Linux driver drives it,
// against a minimal device that records what the transport hands it.
#include "vmm/devices/virtio_mmio/mmio_transport.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace kindling::vmm {
namespace {

class RecordingDevice : public VirtioDevice {
 public:
  uint32_t device_type() const override { return 4; }  // entropy: no config space
  uint64_t device_features() const override { return kVirtioFVersion1; }
  std::vector<uint16_t> queue_max_sizes() const override { return {256}; }
  void read_config(uint64_t, std::span<uint8_t> d) const override { std::memset(d.data(), 0, d.size()); }
  void write_config(uint64_t, std::span<const uint8_t>) override {}
  void activate(VirtioActivation a) override {
    activated_features = a.acked_features;
    queues = a.queues;
  }
  void queue_notify(uint16_t q) override { notified.push_back(q); }
  void reset() override { ++resets; }
  SavedDevice save_device() const override { return {{{5, 4, 3}}, false}; }
  Status restore_device(VirtioActivation a, const SavedDevice& saved) override {
    activated_features = a.acked_features;
    queues = a.queues;
    restored = saved;
    return ok_status();
  }

  SavedDevice restored;
  uint64_t activated_features = 0;
  std::vector<VirtqueueConfig> queues;
  std::vector<uint16_t> notified;
  int resets = 0;
};

class MmioTransportTest : public ::testing::Test {
 protected:
  uint32_t rd(uint64_t off) {
    uint8_t b[4];
    t.read(off, b);
    uint32_t v;
    std::memcpy(&v, b, 4);
    return v;
  }
  void wr(uint64_t off, uint32_t v) {
    uint8_t b[4];
    std::memcpy(b, &v, 4);
    t.write(off, b);
  }
  std::shared_ptr<RecordingDevice> dev = std::make_shared<RecordingDevice>();
  int irqs = 0;
  MmioTransport t{dev, [this] { ++irqs; }};
};

TEST_F(MmioTransportTest, IdentifiesAsVirtioMmioVersion2) {
  EXPECT_EQ(rd(0x000), 0x74726976u);
  EXPECT_EQ(rd(0x004), 2u);
  EXPECT_EQ(rd(0x008), 4u);
  wr(0x014, 1);
  EXPECT_EQ(rd(0x010), 1u);  // VIRTIO_F_VERSION_1 is bit 32
}

TEST_F(MmioTransportTest, DriverInitialisationActivatesTheDevice) {
  wr(0x070, 1 | 2);  // ACKNOWLEDGE | DRIVER
  wr(0x024, 1);
  wr(0x020, 1);      // VERSION_1
  wr(0x070, 1 | 2 | 8);
  EXPECT_EQ(rd(0x070) & 8, 8u);  // FEATURES_OK accepted
  wr(0x030, 0);
  EXPECT_EQ(rd(0x034), 256u);
  wr(0x038, 128);
  wr(0x080, 0x1000);
  wr(0x090, 0x2000);
  wr(0x0a0, 0x3000);
  wr(0x0a4, 0x1);
  wr(0x044, 1);
  wr(0x070, 1 | 2 | 8 | 4);  // DRIVER_OK
  ASSERT_EQ(dev->queues.size(), 1u);
  EXPECT_EQ(dev->queues[0].size, 128);
  EXPECT_EQ(dev->queues[0].desc_table, 0x1000u);
  EXPECT_EQ(dev->queues[0].used_ring, 0x100003000u);
  EXPECT_EQ(dev->activated_features, kVirtioFVersion1);
  wr(0x050, 0);
  wr(0x050, 7);  // no such queue: ignored
  EXPECT_EQ(dev->notified, std::vector<uint16_t>{0});
  t.signal_used_buffer();
  EXPECT_EQ(irqs, 1);
  EXPECT_EQ(rd(0x060), 1u);
  wr(0x064, 1);
  EXPECT_EQ(rd(0x060), 0u);
  wr(0x070, 0);  // reset
  EXPECT_EQ(dev->resets, 1);
  EXPECT_EQ(rd(0x070), 0u);
}

TEST_F(MmioTransportTest, SavedStateRestoresOntoAFreshTransportWithoutAReset) {
  wr(0x070, 1 | 2);
  wr(0x024, 1);
  wr(0x020, 1);
  wr(0x070, 1 | 2 | 8);
  wr(0x038, 64);
  wr(0x080, 0x1000);
  wr(0x090, 0x2000);
  wr(0x0a0, 0x3000);
  wr(0x044, 1);
  wr(0x070, 1 | 2 | 8 | 4);
  wr(0x014, 1);
  t.signal_used_buffer();
  VirtioSavedState saved;
  t.save_state(saved);
  EXPECT_TRUE(saved.activated);
  EXPECT_EQ(saved.status, 0xfu);
  EXPECT_EQ(saved.driver_features, kVirtioFVersion1);
  EXPECT_EQ(saved.interrupt_status, 1u);
  EXPECT_EQ(saved.device_features_sel, 1u);
  ASSERT_EQ(saved.queues.size(), 1u);
  EXPECT_EQ(saved.queues[0].size, 64);
  EXPECT_EQ(saved.queues[0].used_ring, 0x3000u);
  EXPECT_EQ(saved.queues[0].next_avail, 5);
  EXPECT_EQ(saved.queues[0].signalled_used, 3);

  auto dev2 = std::make_shared<RecordingDevice>();
  MmioTransport t2{dev2, [] {}};
  ASSERT_TRUE(t2.restore_state(saved).ok());
  EXPECT_EQ(dev2->resets, 0);
  ASSERT_EQ(dev2->queues.size(), 1u);
  EXPECT_EQ(dev2->queues[0].size, 64);
  EXPECT_EQ(dev2->queues[0].avail_ring, 0x2000u);
  EXPECT_TRUE(dev2->queues[0].ready);
  ASSERT_EQ(dev2->restored.queues.size(), 1u);
  EXPECT_EQ(dev2->restored.queues[0].next_avail, 5);
  EXPECT_EQ(dev2->restored.queues[0].next_used, 4);
  EXPECT_EQ(dev2->activated_features, kVirtioFVersion1);
  uint8_t b[4];
  t2.read(0x070, b);
  EXPECT_EQ(b[0], 0xf);
  t2.read(0x060, b);
  EXPECT_EQ(b[0], 1);
  t2.read(0x010, b);  // device features select 1 survived: bit 32 reads as bit 0
  EXPECT_EQ(b[0], 1);
  uint32_t zero = 0;
  std::memcpy(b, &zero, 4);
  t2.write(0x050, b);  // notify reaches the restored, active device
  EXPECT_EQ(dev2->notified, std::vector<uint16_t>{0});

  // Another device type, another queue layout, features never offered: refused.
  VirtioSavedState other = saved;
  other.device_type = 2;
  EXPECT_FALSE(MmioTransport(std::make_shared<RecordingDevice>(), [] {}).restore_state(other).ok());
  other = saved;
  other.queues[0].max_size = 128;
  EXPECT_FALSE(MmioTransport(std::make_shared<RecordingDevice>(), [] {}).restore_state(other).ok());
  other = saved;
  other.driver_features |= 1ull << 40;
  EXPECT_FALSE(MmioTransport(std::make_shared<RecordingDevice>(), [] {}).restore_state(other).ok());
}

TEST_F(MmioTransportTest, RefusesBadQueueSizesAndUnofferedFeatures) {
  wr(0x070, 3);
  wr(0x024, 0);
  wr(0x020, 0x10);  // a feature the device never offered
  wr(0x070, 3 | 8);
  EXPECT_EQ(rd(0x070) & 8, 0u);
  wr(0x038, 100);  // not a power of two
  wr(0x038, 512);  // above the maximum
  wr(0x044, 1);
  wr(0x024, 1);
  wr(0x070, 0);
  EXPECT_EQ(rd(0x044), 0u);
  uint8_t odd[2] = {0xff, 0xff};
  t.read(0x001, odd);  // unaligned: zeros, no crash
  EXPECT_EQ(odd[0], 0);
}

TEST_F(MmioTransportTest, LegacyDriverWithoutVersion1Fails) {
  wr(0x070, 3);
  wr(0x070, 3 | 8 | 4);
  EXPECT_TRUE(rd(0x070) & 0x80);
  EXPECT_TRUE(dev->queues.empty());
}

}  // namespace
}  // namespace kindling::vmm
