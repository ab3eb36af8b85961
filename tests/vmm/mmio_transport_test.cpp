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
