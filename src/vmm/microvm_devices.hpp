// The virtio devices of one VM, made from validated config before the kernel
// is loaded (a Linux guest learns of them from `virtio_mmio.device=` cmdline
// entries), then attached: MMIO window, irqfd, one eventfd per queue that KVM
// signals through an ioeventfd (or the MMIO-exit fallback writes), and the
// device thread that serves those eventfds.
#pragma once

#include <memory>
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
  std::shared_ptr<MmioTransport> transport;
  UniqueFd irq_event;
  std::vector<UniqueFd> queue_events;
  bool ioeventfd = false;
  // Block only: what the device was opened from (a snapshot records it).
  std::string block_path;
  std::string block_id;
  bool block_read_only = false;
  bool block_flush = false;
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
  // Snapshots. save() refuses devices whose state it cannot carry (net,
  // vsock). from_snapshot() opens the same devices from the saved config, in
  // the saved order; restore() runs after attach() and puts transports and
  // queues back as they were.
  Status save(std::vector<VirtioSavedState>& out) const;
  static Result<VirtioDevices> from_snapshot(const std::vector<VirtioSavedState>& saved);
  Status restore(const std::vector<VirtioSavedState>& saved);
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
