// What a virtio device is to its transport, and the base that every Kindling
// device builds on. Threads: the transport calls activate()/reset() from a
// vCPU thread (register writes); queue_notify() runs on the device thread
// (devices/event_loop) or, in unit tests, on the caller. The base serialises
// them with one mutex per device; devices never block a vCPU on host I/O
// because queue work runs on the device thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "vmm/devices/event_loop.hpp"
#include "vmm/devices/virtio_mmio/virtqueue.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace kindling::vmm {

inline constexpr uint64_t kVirtioFVersion1 = 1ull << 32;

enum VirtioDeviceType : uint32_t { kVirtioNet = 1, kVirtioBlock = 2, kVirtioEntropy = 4, kVirtioVsock = 19 };

// What a device gets from its transport when the driver sets DRIVER_OK.
struct VirtioActivation {
  const GuestMemory* memory = nullptr;
  uint64_t acked_features = 0;
  std::vector<VirtqueueConfig> queues;
  std::function<void()> signal_used;                 // used-buffer interrupt
  std::function<void(const std::string&)> fail;     // DEVICE_NEEDS_RESET + config interrupt
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;
  virtual uint32_t device_type() const = 0;
  virtual uint64_t device_features() const = 0;  // must include kVirtioFVersion1
  virtual std::vector<uint16_t> queue_max_sizes() const = 0;
  // Device-specific configuration space (offset from 0x100); out-of-range reads return zeros.
  virtual void read_config(uint64_t offset, std::span<uint8_t> data) const = 0;
  virtual void write_config(uint64_t offset, std::span<const uint8_t> data) = 0;
  virtual void activate(VirtioActivation activation) = 0;
  virtual void queue_notify(uint16_t queue_index) = 0;
  virtual void reset() = 0;
  // Called once on the API thread before the device thread starts, for
  // devices with host-side sockets or timers to watch.
  virtual Status start_backend(DeviceEventLoop&) { return ok_status(); }

  // Snapshots. Ring positions per queue: {next_avail, next_used, signalled_used}.
  struct QueuePositions {
    uint16_t next_avail = 0, next_used = 0, signalled_used = 0;
  };
  struct SavedDevice {
    std::vector<QueuePositions> queues;  // empty when not active
    bool failed = false;
  };
  virtual SavedDevice save_device() const { return {}; }
  // Activates with `activation` as the driver's DRIVER_OK would, then puts the
  // rings where they were; no queue is processed until the next notification.
  virtual Status restore_device(VirtioActivation, const SavedDevice&) { return make_error("this device cannot be restored"); }
};

// Queues, activation, failure and interrupt suppression shared by all devices.
class VirtioDeviceBase : public VirtioDevice {
 public:
  void activate(VirtioActivation activation) final;
  void queue_notify(uint16_t queue_index) final;
  void reset() final;
  bool failed() const;
  SavedDevice save_device() const override;
  Status restore_device(VirtioActivation activation, const SavedDevice& saved) override;
  // For backend events (a socket became readable, a rate-limit timer fired):
  // runs `fn` under the device lock if the device is active and not failed.
  void run_if_active(const std::function<void()>& fn);

 protected:
  // All with mu_ held.
  virtual void process_queue(uint16_t queue_index) = 0;
  virtual void on_activate() {}
  virtual void on_reset() {}
  // After restore_device() re-activated the device from a snapshot (after
  // on_activate()): for work a restored device owes its driver.
  virtual void on_restore() {}
  // Chains popped from queue 0 but not yet served (a rate limiter deferred
  // them): a snapshot rewinds the avail position over them, so the restored
  // device pops them again.
  virtual uint16_t deferred_chains() const { return 0; }
  // Marks the device DEVICE_NEEDS_RESET; no more queue work until the driver resets it.
  void fail(const std::string& why);
  // Raises the used-buffer interrupt if the driver wants one for queue `q`.
  void interrupt_if_needed(size_t q);
  bool usable() const { return active_ && !failed_; }

  mutable std::mutex mu_;
  std::vector<Virtqueue> queues_;
  const GuestMemory* mem_ = nullptr;
  uint64_t acked_features_ = 0;

 private:
  void adopt(VirtioActivation activation);
  VirtioActivation activation_;
  bool active_ = false;
  bool failed_ = false;
};

// Copies `src` into config space `data` at `offset`, zeros beyond it.
void read_config_bytes(std::span<const uint8_t> src, uint64_t offset, std::span<uint8_t> data);

}  // namespace kindling::vmm
