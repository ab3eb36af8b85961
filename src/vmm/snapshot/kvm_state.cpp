#include "vmm/snapshot/kvm_state.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>

#include <cstring>

#include "vmm/arch/x86/vcpu_setup.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/kvm/kvm_abi.hpp"
#include "vmm/logger.hpp"

namespace kindling::vmm {
namespace {

static_assert(sizeof(kvm_abi::Xsave4k) == sizeof(XsaveArea));

template <typename T>
Status get(int fd, unsigned long req, T& out, const char* name) {
  if (::ioctl(fd, req, &out) != 0) return ioctl_error(name);
  return ok_status();
}
template <typename T>
Status set(int fd, unsigned long req, const T& in, const char* name) {
  if (::ioctl(fd, req, &in) != 0) return ioctl_error(name);
  return ok_status();
}

Result<std::vector<kvm_cpuid_entry2>> get_cpuid(int vcpu_fd) {
  constexpr uint32_t n = kSnapshotMaxCpuidEntries;
  std::vector<uint8_t> buf(sizeof(kvm_abi::CpuidHeader) + n * sizeof(kvm_cpuid_entry2));
  kvm_abi::CpuidHeader header{n, 0};
  std::memcpy(buf.data(), &header, sizeof(header));
  if (::ioctl(vcpu_fd, kvm_abi::kGetCpuid2, buf.data()) != 0) return ioctl_error("KVM_GET_CPUID2");
  std::memcpy(&header, buf.data(), sizeof(header));
  std::vector<kvm_cpuid_entry2> out(std::min(header.nent, n));
  std::memcpy(out.data(), buf.data() + sizeof(header), out.size() * sizeof(kvm_cpuid_entry2));
  return out;
}

// KVM_GET/SET_MSRS return how many entries they processed, stopping at the
// first one KVM refuses.
int msrs_ioctl(int vcpu_fd, unsigned long req, std::vector<kvm_msr_entry>& entries) {
  std::vector<uint8_t> buf(sizeof(kvm_abi::MsrsHeader) + entries.size() * sizeof(kvm_msr_entry));
  kvm_abi::MsrsHeader header{static_cast<uint32_t>(entries.size()), 0};
  std::memcpy(buf.data(), &header, sizeof(header));
  std::memcpy(buf.data() + sizeof(header), entries.data(), entries.size() * sizeof(kvm_msr_entry));
  int n = ::ioctl(vcpu_fd, req, buf.data());
  if (n > 0) std::memcpy(entries.data(), buf.data() + sizeof(header), static_cast<size_t>(n) * sizeof(kvm_msr_entry));
  return n;
}

}  // namespace

Result<VcpuState> capture_vcpu_state(int fd, const std::vector<uint32_t>& msr_indices, bool has_xsave, bool has_xcrs) {
  VcpuState s;
  KINDLING_TRY(cpuid, get_cpuid(fd));
  s.cpuid = std::move(cpuid);
  if (auto st = get(fd, KVM_GET_MP_STATE, s.mp_state, "KVM_GET_MP_STATE"); !st) return st.error();
  if (auto st = get(fd, KVM_GET_REGS, s.regs, "KVM_GET_REGS"); !st) return st.error();
  if (auto st = get(fd, KVM_GET_SREGS, s.sregs, "KVM_GET_SREGS"); !st) return st.error();
  s.has_xsave = has_xsave;
  if (has_xsave) {
    if (::ioctl(fd, kvm_abi::kGetXsave, &s.xsave) != 0) return ioctl_error("KVM_GET_XSAVE");
  } else if (auto st = get(fd, KVM_GET_FPU, s.fpu, "KVM_GET_FPU"); !st) {
    return st.error();
  }
  s.has_xcrs = has_xcrs;
  if (has_xcrs) {
    if (auto st = get(fd, KVM_GET_XCRS, s.xcrs, "KVM_GET_XCRS"); !st) return st.error();
  }
  if (auto st = get(fd, KVM_GET_DEBUGREGS, s.debugregs, "KVM_GET_DEBUGREGS"); !st) return st.error();
  if (auto st = get(fd, KVM_GET_LAPIC, s.lapic, "KVM_GET_LAPIC"); !st) return st.error();
  if (auto st = get(fd, KVM_GET_VCPU_EVENTS, s.events, "KVM_GET_VCPU_EVENTS"); !st) return st.error();
  // The index list names MSRs KVM knows, not all of which this vCPU can
  // read (features the CPU lacks): keep the ones it reads back, one by one.
  for (uint32_t index : msr_indices) {
    if (s.msrs.size() >= kSnapshotMaxMsrs) break;
    std::vector<kvm_msr_entry> one(1);
    one[0].index = index;
    if (msrs_ioctl(fd, kvm_abi::kGetMsrs, one) == 1) s.msrs.push_back(one[0]);
  }
  return s;
}

Status restore_vcpu_state(int fd, const VcpuState& s) {
  // Firecracker's order: CPUID before anything it gates, the LAPIC before
  // MSRs (TSC deadline), events last (they may refer to the rest).
  if (auto st = set_vcpu_cpuid(fd, s.cpuid); !st) return st;
  if (auto st = set(fd, KVM_SET_MP_STATE, s.mp_state, "KVM_SET_MP_STATE"); !st) return st;
  if (auto st = set(fd, KVM_SET_REGS, s.regs, "KVM_SET_REGS"); !st) return st;
  if (auto st = set(fd, KVM_SET_SREGS, s.sregs, "KVM_SET_SREGS"); !st) return st;
  if (s.has_xsave) {
    if (::ioctl(fd, kvm_abi::kSetXsave, &s.xsave) != 0) return ioctl_error("KVM_SET_XSAVE");
  } else if (auto st = set(fd, KVM_SET_FPU, s.fpu, "KVM_SET_FPU"); !st) {
    return st;
  }
  if (s.has_xcrs) {
    if (auto st = set(fd, KVM_SET_XCRS, s.xcrs, "KVM_SET_XCRS"); !st) return st;
  }
  if (auto st = set(fd, KVM_SET_DEBUGREGS, s.debugregs, "KVM_SET_DEBUGREGS"); !st) return st;
  if (auto st = set(fd, KVM_SET_LAPIC, s.lapic, "KVM_SET_LAPIC"); !st) return st;
  std::vector<kvm_msr_entry> msrs = s.msrs;
  size_t done = 0;
  while (done < msrs.size()) {
    std::vector<kvm_msr_entry> rest(msrs.begin() + static_cast<ptrdiff_t>(done), msrs.end());
    int n = msrs_ioctl(fd, kvm_abi::kSetMsrs, rest);
    if (n < 0) return ioctl_error("KVM_SET_MSRS");
    done += static_cast<size_t>(n);
    if (done < msrs.size()) {
      // Readable but not writable (some read-only feature MSRs): skipped, as
      // the same KVM produced the value.
      log_debug("restore: KVM refused MSR {:#x}; skipped", msrs[done].index);
      ++done;
    }
  }
  if (auto st = set(fd, KVM_SET_VCPU_EVENTS, s.events, "KVM_SET_VCPU_EVENTS"); !st) return st;
  return ok_status();
}

Result<VmState> capture_vm_state(int fd) {
  VmState s;
  s.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
  s.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
  s.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
  for (kvm_irqchip* chip : {&s.pic_master, &s.pic_slave, &s.ioapic}) {
    if (auto st = get(fd, KVM_GET_IRQCHIP, *chip, "KVM_GET_IRQCHIP"); !st) return st.error();
  }
  if (auto st = get(fd, KVM_GET_PIT2, s.pit, "KVM_GET_PIT2"); !st) return st.error();
  if (auto st = get(fd, KVM_GET_CLOCK, s.clock, "KVM_GET_CLOCK"); !st) return st.error();
  return s;
}

Status restore_vm_state(int fd, const VmState& s) {
  if (auto st = set(fd, KVM_SET_PIT2, s.pit, "KVM_SET_PIT2"); !st) return st;
  // KVM_SET_CLOCK accepts only KVM_CLOCK_REALTIME among the flags GET returns;
  // the guest's clock continues from the saved value.
  kvm_clock_data clock = s.clock;
  clock.flags = 0;
  if (auto st = set(fd, KVM_SET_CLOCK, clock, "KVM_SET_CLOCK"); !st) return st;
  for (const kvm_irqchip* chip : {&s.pic_master, &s.pic_slave, &s.ioapic}) {
    if (auto st = set(fd, KVM_SET_IRQCHIP, *chip, "KVM_SET_IRQCHIP"); !st) return st;
  }
  return ok_status();
}

}  // namespace kindling::vmm
