// MicroVm's snapshot half: saving a paused VM's state and memory, and
// building a VM from them. The byte format lives in snapshot/snapshot_format,
// the KVM ioctls in snapshot/kvm_state; this file puts a VM together.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmm/arch/x86/layout.hpp"
#include "vmm/logger.hpp"
#include "vmm/microvm.hpp"
#include "vmm/snapshot/kvm_state.hpp"

namespace kindling::vmm {
namespace {

bool all_zero(const uint8_t* p, size_t n) {
  // Word-wise: memory files are written page by page, so this is the hot loop.
  const auto* w = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i < n / 8; ++i) {
    if (w[i] != 0) return false;
  }
  return true;
}

Status write_all(int fd, const uint8_t* p, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return make_error(fmt::format("Cannot write the memory file: {}", w < 0 ? std::strerror(errno) : "short write"));
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return ok_status();
}

}  // namespace

Result<SnapshotState> MicroVm::capture_state() const {
  if (!paused_) return make_error("The microVM must be paused (PATCH /vm {\"state\": \"Paused\"}) before a snapshot is taken.");
  SnapshotState s;
  // Virtio transports, queues, device config and rate limiters (the caller
  // holds the device thread still).
  if (auto st = virtio_.save(s.virtio); !st) return st.error();
  s.machine.vcpu_count = vcpu_count_;
  s.machine.mem_bytes = memory_->size();
  s.machine.huge_pages = huge_pages_;
  s.machine.cpu = host_cpu_identity();
  KINDLING_TRY(vm_state, capture_vm_state(vm_->fd()));
  s.vm = vm_state;
  s.serial = serial_->save_state();
  KINDLING_TRY(msr_indices, kvm_->msr_index_list());
  const bool xsave = kvm_->has_cap(KVM_CAP_XSAVE);
  const bool xcrs = kvm_->has_cap(KVM_CAP_XCRS);
  for (const auto& v : vcpus_) {
    auto st = capture_vcpu_state(v->fd(), msr_indices, xsave, xcrs);
    if (!st) return make_error(fmt::format("Cannot save vCPU {}: {}", v->index(), st.error().message));
    s.vcpus.push_back(std::move(*st));
  }
  return s;
}

Status MicroVm::write_memory_file(const std::string& path) const {
  struct stat st {};
  if (backing_file_ && ::stat(path.c_str(), &st) == 0 &&
      std::pair<uint64_t, uint64_t>(st.st_dev, st.st_ino) == *backing_file_) {
    // Truncating it would pull the pages out from under this very VM (SIGBUS
    // in a File mapping, a dead userfaultfd handler).
    return make_error(fmt::format("The memory file {} is the one this microVM was restored from; write the snapshot to a new file.", path));
  }
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return make_error(fmt::format("Cannot create the memory file: {} ({})", std::strerror(errno), path));
  // The whole size first: the pages never written stay holes that read as zeros.
  if (::ftruncate(fd.get(), static_cast<off_t>(memory_->size())) != 0) {
    return make_error(fmt::format("Cannot size the memory file: {} ({})", std::strerror(errno), path));
  }
  // The host mapping is one piece (the MMIO hole is only in guest-physical
  // space), so file offset = offset in the mapping.
  const uint8_t* base = memory_->regions().front().host;
  constexpr size_t kPage = 4096;
  uint64_t run_start = 0, run_len = 0;
  for (uint64_t off = 0; off < memory_->size(); off += kPage) {
    if (!all_zero(base + off, kPage)) {
      if (run_len == 0) run_start = off;
      run_len += kPage;
      if (run_len < (8u << 20)) continue;
    }
    if (run_len) {
      if (auto s = write_all(fd.get(), base + run_start, run_len, run_start); !s) return s;
      run_len = 0;
    }
  }
  if (run_len) {
    if (auto s = write_all(fd.get(), base + run_start, run_len, run_start); !s) return s;
  }
  return ok_status();
}

Result<std::unique_ptr<MicroVm>> MicroVm::restore(const SnapshotState& state, RestoreMemory memory, int serial_out_fd,
                                                  VmmMetrics& metrics, MicroVmHooks hooks,
                                                  std::optional<PreparedPlatform> prepared) {
  std::unique_ptr<MicroVm> vm(new MicroVm(metrics));
  vm->hooks_ = std::move(hooks);
  vm->vcpu_count_ = state.machine.vcpu_count;
  vm->huge_pages_ = state.machine.huge_pages;
  const int64_t t0 = monotonic_us();
  auto stage = [t0](const char* what) { log_debug("restore: {} at +{} us", what, monotonic_us() - t0); };

  if (prepared && prepared->memory) {
    // Prepared for a cold boot with other memory: not ours to reuse.
    discard_in_background(std::move(*prepared));
    prepared.reset();
  }
  if (!prepared) {
    KINDLING_TRY(fresh, prepare_platform());
    prepared.emplace(std::move(fresh));
  }
  vm->kvm_ = std::move(prepared->kvm);
  vm->vm_ = std::move(prepared->vm);

  struct stat file_stat {};
  if (::fstat(memory.file.get(), &file_stat) == 0) vm->backing_file_.emplace(file_stat.st_dev, file_stat.st_ino);
  MemoryBacking backing;
  if (memory.kind == RestoreMemory::Kind::kFilePrivate) {
    // A file on an ordinary filesystem cannot back hugetlb pages; the guest
    // still runs, in 4 KiB pages.
    backing.kind = MemoryBacking::Kind::kFilePrivate;
    backing.fd = memory.file.get();
  } else {
    backing.huge_pages = state.machine.huge_pages;
  }
  KINDLING_TRY(mem, GuestMemory::create(state.machine.mem_bytes, backing));
  vm->memory_.emplace(std::move(mem));
  stage("guest memory mapped");
  if (memory.kind == RestoreMemory::Kind::kUffd) {
    UffdOptions opts = std::move(memory.uffd);
    opts.page_size = state.machine.huge_pages ? (2u << 20) : 4096u;
    MicroVm* self = vm.get();
    opts.on_fatal = [self](const std::string& why) { self->guest_stopped(GuestStop::kVmmFault, "guest memory cannot be served: " + why); };
    KINDLING_TRY(handler, UffdHandler::start(vm->memory_->regions().front().host, vm->memory_->size(), std::move(memory.file),
                                              std::move(opts), metrics));
    vm->uffd_ = std::move(handler);
  }
  stage("userfaultfd handler started");
  if (auto s = vm->vm_->map_memory(*vm->memory_); !s) return s.error();
  stage("memory given to KVM");

  if (auto s = restore_vm_state(vm->vm_->fd(), state.vm); !s) return make_error("Cannot restore the VM state: " + s.error().message);
  if (auto s = vm->attach_legacy_devices(serial_out_fd); !s) return s.error();
  vm->serial_->restore_state(state.serial);
  {
    KINDLING_TRY(virtio, VirtioDevices::from_snapshot(state.virtio));
    vm->virtio_ = std::move(virtio);
  }
  // irqfds and ioeventfds registered afresh on this VM, then the saved
  // transport and queue state on top: the guest's driver carries on.
  if (auto s = vm->virtio_.attach(*vm->vm_, *vm->memory_, vm->mmio_bus_, vm->hooks_.use_ioeventfd); !s) return s.error();
  if (auto s = vm->virtio_.restore(state.virtio); !s) return s.error();
  for (uint32_t i = 0; i < state.machine.vcpu_count; ++i) {
    KINDLING_TRY(vcpu, Vcpu::create(*vm->kvm_, *vm->vm_, i));
    if (auto s = restore_vcpu_state(vcpu->fd(), state.vcpus[i]); !s) {
      return make_error(fmt::format("Cannot restore vCPU {}: {}", i, s.error().message));
    }
    vm->vcpus_.push_back(std::move(vcpu));
  }
  stage("vcpus restored");
  log_info("microvm restored: {} vCPU(s), {} MiB, memory from {}", state.machine.vcpu_count, state.machine.mem_bytes >> 20,
           memory.kind == RestoreMemory::Kind::kUffd ? "userfaultfd" : "a private file mapping");
  return vm;
}

}  // namespace kindling::vmm
