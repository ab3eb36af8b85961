// Thin, checked wrappers over the /dev/kvm system and VM file descriptors.
// Every ioctl failure becomes an Error that names the ioctl and errno.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace kindling::vmm {

// Errno-carrying error for a failed ioctl.
Error ioctl_error(const char* what);

class Kvm {
 public:
  static Result<Kvm> open(const char* path = "/dev/kvm");

  int fd() const { return fd_.get(); }
  bool has_cap(long cap) const;
  int vcpu_mmap_size() const { return vcpu_mmap_size_; }
  // KVM_GET_SUPPORTED_CPUID: what this KVM can show a guest.
  Result<std::vector<kvm_cpuid_entry2>> supported_cpuid() const;
  // KVM_GET_MSR_INDEX_LIST: MSRs a snapshot would need to save.
  Result<std::vector<uint32_t>> msr_index_list() const;

 private:
  UniqueFd fd_;
  int vcpu_mmap_size_ = 0;
};

class KvmVm {
 public:
  static Result<KvmVm> create(const Kvm& kvm);

  int fd() const { return fd_.get(); }
  // Legacy x86 plumbing a PC-like guest expects: PIC+IOAPIC+LAPICs in the
  // kernel, the PIT, and the pages KVM reserves for real-mode emulation.
  Status setup_platform();
  Status map_memory(const GuestMemory& memory);
  Status set_irq_line(uint32_t irq, bool level);
  // Edge-triggered interrupt through an eventfd; returns the eventfd.
  Result<UniqueFd> register_irqfd(uint32_t gsi);
  // KVM signals `fd` instead of exiting when the guest writes `datamatch`
  // (`len` bytes) at MMIO address `addr`.
  Status register_ioeventfd(uint64_t addr, uint32_t len, uint64_t datamatch, int fd);

 private:
  UniqueFd fd_;
};

}  // namespace kindling::vmm
