// virtio-mmio transport, version 2 (virtio 1.2, section 4.2.2): the register
// window a guest driver uses to discover a device, negotiate features, set up
// queues and notify. Devices (block, net, vsock, rng; issue 7) implement
// VirtioDevice and live in their own folders under devices/; this file knows
// nothing about any of them. Queue processing (the descriptor walker) belongs
// in devices/virtio_mmio/virtqueue.* with its own fuzz target.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "vmm/devices/bus.hpp"

namespace kindling::vmm {

inline constexpr uint64_t kVirtioFVersion1 = 1ull << 32;

// Guest-physical addresses and size of one split virtqueue, as the driver set them.
struct VirtqueueConfig {
  uint16_t max_size = 0;
  uint16_t size = 0;
  bool ready = false;
  uint64_t desc_table = 0;
  uint64_t avail_ring = 0;
  uint64_t used_ring = 0;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;
  virtual uint32_t device_type() const = 0;  // 2 block, 1 net, 19 vsock, 4 entropy
  virtual uint64_t device_features() const = 0;  // must include kVirtioFVersion1
  virtual std::vector<uint16_t> queue_max_sizes() const = 0;
  // Device-specific configuration space (offset from 0x100); out-of-range reads return zeros.
  virtual void read_config(uint64_t offset, std::span<uint8_t> data) const = 0;
  virtual void write_config(uint64_t offset, std::span<const uint8_t> data) = 0;
  // Called when the driver sets DRIVER_OK, with the negotiated features and queues.
  virtual void activate(uint64_t acked_features, const std::vector<VirtqueueConfig>& queues) = 0;
  virtual void queue_notify(uint16_t queue_index) = 0;
  virtual void reset() = 0;
};

class MmioTransport : public BusDevice {
 public:
  // `raise_irq` pulses the device's interrupt line (an irqfd).
  MmioTransport(std::shared_ptr<VirtioDevice> device, std::function<void()> raise_irq);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Devices call this after putting buffers in a used ring.
  void signal_used_buffer();
  uint32_t device_status() const;

 private:
  uint32_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint32_t value);
  void reset_locked();
  VirtqueueConfig* selected_queue();

  mutable std::mutex mu_;
  std::shared_ptr<VirtioDevice> device_;
  std::function<void()> raise_irq_;
  std::vector<VirtqueueConfig> queues_;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_sel_ = 0;
  uint32_t interrupt_status_ = 0;
  uint32_t status_ = 0;
  uint32_t config_generation_ = 0;
  bool activated_ = false;
};

}  // namespace kindling::vmm
