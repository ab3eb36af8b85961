// The virtio devices of one VM, made from validated config before the kernel
// is loaded (a Linux guest learns of them from `virtio_mmio.device=` cmdline
// entries), then attached: MMIO window, irqfd, one eventfd per queue that KVM
// signals through an ioeventfd (or the MMIO-exit fallback writes), and the
// device thread that serves those eventfds.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "vmm/devices/bus.hpp"
#include "vmm/devices/event_loop.hpp"
#include "vmm/devices/rate_limiter.hpp"
#include "vmm/devices/virtio_mmio/mmio_transport.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/snapshot/snapshot_format.hpp"
#include "vmm/vmm_config.hpp"

namespace kindling::vmm {

struct VirtioSlot {
  std::string name;  // "rng", "block:<drive_id>", "vsock"
  uint64_t mmio_base = 0;
  uint32_t irq = 0;
  std::shared_ptr<VirtioDevice> device;
  std::vector<std::shared_ptr<RateLimiter>> limiters;  // their timers re-run queue 0 when tokens are back
  // The same limiters by role, for snapshots: [0] the device's (rng, block)
  // or net RX, [1] net TX; null where there is none.
  std::array<std::shared_ptr<RateLimiter>, 2> limiter_roles;
  std::shared_ptr<MmioTransport> transport;
  UniqueFd irq_event;
  std::vector<UniqueFd> queue_events;
  bool ioeventfd = false;
  // Block only: what the device was opened from (a snapshot records it).
  std::string block_path;
  std::string block_id;
  bool block_read_only = false;
  bool block_flush = false;
  std::string net_iface_id;  // net only
};

class VirtioDevices {
 public:
  VirtioDevices() = default;
  VirtioDevices(VirtioDevices&&) = default;
  VirtioDevices& operator=(VirtioDevices&&) = default;
  ~VirtioDevices() { stop(); }

  // Opens backing files and sockets; assigns windows and IRQs in order.
  static Result<VirtioDevices> create(const VmResources& res);
  // The cmdline entries (and root= for a root drive) for Linux guests.
  std::string cmdline_entries() const;
  // Binds every device to the VM: to be called once guest memory exists.
  Status attach(KvmVm& vm, const GuestMemory& memory, DeviceBus& mmio_bus, bool use_ioeventfd);
  // Snapshots (hold() the device thread still around save() and the memory
  // file). from_snapshot() opens the same devices from the saved config, in
  // the saved order: block files and taps reopened by the saved path and
  // name, vsock listening on its saved uds_path, limiters with their saved
  // buckets (the caller applies load-time overrides to `saved` first);
  // restore() runs after attach() and puts transports and queues back.
  Status save(std::vector<VirtioSavedState>& out) const;
  static Result<VirtioDevices> from_snapshot(const std::vector<VirtioSavedState>& saved);
  Status restore(const std::vector<VirtioSavedState>& saved);
  std::unique_lock<std::mutex> hold() { return loop_ ? loop_->hold() : std::unique_lock<std::mutex>(); }
  void start(std::function<void()> thread_setup);
  void stop();
  bool empty() const { return slots_.empty(); }
  const std::vector<VirtioSlot>& slots() const { return slots_; }

 private:
  std::vector<VirtioSlot> slots_;
  std::string root_arg_;
  std::unique_ptr<DeviceEventLoop> loop_;
};

}  // namespace kindling::vmm
