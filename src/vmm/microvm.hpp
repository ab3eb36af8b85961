// A running microVM: KVM VM, guest memory, devices and vCPU threads, built
// from validated VmResources. The API layer drives it through this interface
// only; it never touches KVM itself.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "vmm/devices/bus.hpp"
#include "vmm/devices/i8042/i8042.hpp"
#include "vmm/devices/serial/uart8250.hpp"
#include "vmm/exit_code.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/kvm/vcpu.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/memory/uffd_handler.hpp"
#include "vmm/metrics.hpp"
#include "vmm/microvm_devices.hpp"
#include "vmm/snapshot/snapshot_format.hpp"
#include "vmm/vmm_config.hpp"

namespace kindling::vmm {

struct MicroVmHooks {
  // Called once, from a vCPU thread, when the guest ends the VM.
  std::function<void(ExitCode, const std::string& why)> on_guest_exit;
  // Runs on each vCPU thread before its first KVM_RUN (seccomp).
  std::function<void()> vcpu_thread_setup;
  // Runs on the device thread before it serves any queue (seccomp).
  std::function<void()> device_thread_setup;
  // False: virtio notifications always by MMIO exit (tests the fallback).
  bool use_ioeventfd = true;
};

// The parts of a VM that depend only on the machine config: KVM VM, irqchip,
// PIT and guest memory. On nested hypervisors creating them costs several
// milliseconds (KVM waits for SRCU grace periods when the PIT and memory slots
// are registered), so Vmm prepares them in the background while the API is
// still being configured, and InstanceStart only loads the kernel and starts
// vCPUs.
struct PreparedPlatform {
  std::optional<Kvm> kvm;
  std::optional<KvmVm> vm;
  std::optional<GuestMemory> memory;  // absent until the size is known
  bool huge_pages = false;
  bool has_memory(uint64_t bytes, bool huge) const { return memory && memory->size() == bytes && huge_pages == huge; }
};

// Where a restored VM's memory comes from. kFilePrivate: a MAP_PRIVATE
// mapping of the memory file (the kernel loads pages on first touch, writes
// stay private). kUffd: anonymous (or hugetlbfs, if the snapshot's VM had 2M
// pages) memory filled on first touch by a UffdHandler from the file.
struct RestoreMemory {
  enum class Kind { kFilePrivate, kUffd };
  Kind kind = Kind::kFilePrivate;
  UniqueFd file;     // the memory file, already checked to be exactly guest-memory sized
  UffdOptions uffd;  // page_size is set from the snapshot
};

class MicroVm {
 public:
  // VM, irqchip and PIT: needs no configuration.
  static Result<PreparedPlatform> prepare_platform();
  // Adds guest memory to a platform that has none yet.
  static Status prepare_memory(PreparedPlatform& p, uint64_t mem_bytes, bool huge_pages);
  // Destroying a VM takes KVM ~16 ms on nested hosts; do it off the caller's path.
  static void discard_in_background(PreparedPlatform p);

  // `serial_out_fd` is borrowed and must outlive the VM. `prepared` must match
  // the machine config (Vmm checks); without one the platform is made here.
  static Result<std::unique_ptr<MicroVm>> build(const VmResources& resources, int serial_out_fd, VmmMetrics& metrics,
                                                MicroVmHooks hooks, std::optional<PreparedPlatform> prepared = {});
  // A VM from saved state: same devices as build(), vCPU and VM state from
  // the snapshot instead of a kernel. start() it (paused or not) afterwards.
  static Result<std::unique_ptr<MicroVm>> restore(const SnapshotState& state, RestoreMemory memory, int serial_out_fd,
                                                  VmmMetrics& metrics, MicroVmHooks hooks,
                                                  std::optional<PreparedPlatform> prepared = {});
  ~MicroVm();

  void start(bool paused = false);
  // Snapshot of a paused VM (vCPUs parked, so their state holds still).
  Result<SnapshotState> capture_state() const;
  // Keeps the device thread still (no tap frame, socket or limiter timer
  // served) until released: around capture_state() and write_memory_file().
  std::unique_lock<std::mutex> hold_devices() { return virtio_.hold(); }
  // Guest RAM to `path`, all-zero pages left as holes (a sparse file).
  Status write_memory_file(const std::string& path) const;
  // Record mode: the pages faulted in so far (empty without a Uffd backend).
  std::vector<uint64_t> recorded_hot_pages() const { return uffd_ ? uffd_->recorded_pages() : std::vector<uint64_t>{}; }
  Status pause();
  Status resume();
  void send_ctrl_alt_del();
  void stop();  // stops and joins every vCPU; idempotent
  bool paused() const { return paused_; }

 private:
  MicroVm(VmmMetrics& metrics) : metrics_(metrics) {}
  void guest_stopped(GuestStop why, const std::string& detail);
  Status attach_legacy_devices(int serial_out_fd);

  VmmMetrics& metrics_;
  MicroVmHooks hooks_;
  std::optional<Kvm> kvm_;
  std::optional<KvmVm> vm_;
  std::optional<GuestMemory> memory_;
  DeviceBus pio_bus_;
  DeviceBus mmio_bus_;
  std::shared_ptr<Uart8250> serial_;
  std::shared_ptr<I8042> i8042_;
  std::vector<UniqueFd> irqfds_;
  VirtioDevices virtio_;  // after memory_: destroyed (and its thread stopped) first
  std::vector<std::unique_ptr<Vcpu>> vcpus_;
  std::atomic<bool> exit_reported_{false};
  bool paused_ = false;
  uint32_t vcpu_count_ = 0;
  bool huge_pages_ = false;
  // The restored-from memory file (device, inode): a snapshot must not be
  // written over it while this VM's memory is mapped from or served out of it.
  std::optional<std::pair<uint64_t, uint64_t>> backing_file_;
  // Serves faults until every vCPU has stopped (stop() joins them first).
  std::unique_ptr<UffdHandler> uffd_;
};

}  // namespace kindling::vmm
