// virtio-mmio transport, version 2 (virtio 1.2, section 4.2.2): the register
// window a guest driver uses to discover a device, negotiate features, set up
// queues and notify. Devices (block, net, vsock, rng; issue 7) implement
// VirtioDevice and live in their own folders under devices/; this file knows
// nothing about any of them. Queue processing is in virtqueue.*.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "vmm/devices/bus.hpp"
#include "vmm/devices/virtio_mmio/virtio_device.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/snapshot/snapshot_format.hpp"

namespace kindling::vmm {

class MmioTransport : public BusDevice {
 public:
  // `raise_irq` pulses the device's interrupt line (an irqfd). `memory` is
  // handed to the device at activation (null only in register-level tests).
  MmioTransport(std::shared_ptr<VirtioDevice> device, std::function<void()> raise_irq,
                const GuestMemory* memory = nullptr);

  // Where a QueueNotify write goes when KVM did not catch it with an
  // ioeventfd: by default straight to the device, in the VM to the queue's
  // eventfd so the device thread does the work. Set before the vCPUs run.
  void set_queue_notifier(std::function<void(uint16_t)> notifier) { notifier_ = std::move(notifier); }
  static constexpr uint64_t kQueueNotifyOffset = 0x050;

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Devices call this after putting buffers in a used ring.
  void signal_used_buffer();
  // The device broke down (e.g. the driver broke the ring protocol):
  // DEVICE_NEEDS_RESET and a configuration-change interrupt.
  void signal_needs_reset();
  uint32_t device_status() const;

  // Snapshots (vCPUs and the device thread stopped or parked). save_state
  // fills the transport and queue fields of `out`; restore_state puts them
  // back and, if the driver had activated the device, re-activates it with
  // its rings where they were (no reset, no queue processed).
  void save_state(VirtioSavedState& out) const;
  Status restore_state(const VirtioSavedState& in);

 private:
  VirtioActivation make_activation();
  uint32_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint32_t value);
  void reset_locked();
  VirtqueueConfig* selected_queue();

  mutable std::mutex mu_;
  std::shared_ptr<VirtioDevice> device_;
  std::function<void()> raise_irq_;
  std::function<void(uint16_t)> notifier_;
  const GuestMemory* memory_;
  std::vector<VirtqueueConfig> queues_;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_sel_ = 0;
  std::atomic<uint32_t> interrupt_status_{0};
  std::atomic<bool> needs_reset_{false};
  uint32_t status_ = 0;
  uint32_t config_generation_ = 0;
  bool activated_ = false;
};

}  // namespace kindling::vmm
