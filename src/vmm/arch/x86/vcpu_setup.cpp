#include "vmm/arch/x86/vcpu_setup.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>

#include <array>
#include <cstring>
#include <memory>
#include <vector>

#include "vmm/arch/x86/layout.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/kvm/kvm_abi.hpp"

namespace kindling::vmm {
namespace {

constexpr uint64_t kCr0Pe = 1, kCr0Et = 1 << 4, kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1 << 5;
constexpr uint64_t kEferLme = 1 << 8, kEferLma = 1 << 10;

constexpr uint32_t kMsrSysenterCs = 0x174, kMsrSysenterEsp = 0x175, kMsrSysenterEip = 0x176;
constexpr uint32_t kMsrStar = 0xc0000081, kMsrLstar = 0xc0000082, kMsrCstar = 0xc0000083, kMsrSyscallMask = 0xc0000084;
constexpr uint32_t kMsrKernelGsBase = 0xc0000102, kMsrTsc = 0x10, kMsrMiscEnable = 0x1a0;
constexpr uint64_t kMiscEnableFastStrings = 1;

kvm_segment flat_segment(uint16_t selector, uint8_t type, bool code64) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.db = code64 ? 0 : 1;
  s.s = 1;
  s.l = code64 ? 1 : 0;
  s.g = 1;
  return s;
}

void set_task_and_ldt(kvm_sregs& sregs) {
  sregs.tr = {};
  sregs.tr.selector = 0x18;
  sregs.tr.limit = 0x67;
  sregs.tr.type = 11;  // 32/64-bit busy TSS
  sregs.tr.present = 1;
  sregs.ldt = {};
  sregs.ldt.type = 2;
  sregs.ldt.present = 1;
  sregs.ldt.unusable = 1;
}

Status set_msr_list(int vcpu_fd, const std::vector<std::pair<uint32_t, uint64_t>>& list) {
  if (list.empty()) return ok_status();
  std::vector<uint8_t> buf(sizeof(kvm_abi::MsrsHeader) + list.size() * sizeof(kvm_msr_entry));
  kvm_abi::MsrsHeader header{static_cast<uint32_t>(list.size()), 0};
  std::memcpy(buf.data(), &header, sizeof(header));
  for (size_t i = 0; i < list.size(); ++i) {
    kvm_msr_entry e{};
    e.index = list[i].first;
    e.data = list[i].second;
    std::memcpy(buf.data() + sizeof(header) + i * sizeof(e), &e, sizeof(e));
  }
  int n = ::ioctl(vcpu_fd, kvm_abi::kSetMsrs, buf.data());
  if (n < 0) return ioctl_error("KVM_SET_MSRS");
  if (static_cast<size_t>(n) != list.size()) {
    return make_error(fmt::format("KVM_SET_MSRS: KVM refused MSR {:#x}", list[static_cast<size_t>(n)].first));
  }
  return ok_status();
}

Result<uint64_t> get_msr(int vcpu_fd, uint32_t index) {
  std::array<uint8_t, sizeof(kvm_abi::MsrsHeader) + sizeof(kvm_msr_entry)> buf{};
  kvm_abi::MsrsHeader header{1, 0};
  kvm_msr_entry e{};
  e.index = index;
  std::memcpy(buf.data(), &header, sizeof(header));
  std::memcpy(buf.data() + sizeof(header), &e, sizeof(e));
  if (::ioctl(vcpu_fd, kvm_abi::kGetMsrs, buf.data()) != 1) return make_error(fmt::format("KVM_GET_MSRS: cannot read MSR {:#x}", index));
  std::memcpy(&e, buf.data() + sizeof(header), sizeof(e));
  return e.data;
}

}  // namespace

Status set_vcpu_cpuid(int vcpu_fd, const std::vector<kvm_cpuid_entry2>& entries) {
  std::vector<uint8_t> buf(sizeof(kvm_abi::CpuidHeader) + entries.size() * sizeof(kvm_cpuid_entry2));
  kvm_abi::CpuidHeader header{static_cast<uint32_t>(entries.size()), 0};
  std::memcpy(buf.data(), &header, sizeof(header));
  std::memcpy(buf.data() + sizeof(header), entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  if (::ioctl(vcpu_fd, kvm_abi::kSetCpuid2, buf.data()) != 0) return ioctl_error("KVM_SET_CPUID2");
  return ok_status();
}

Status setup_lapic_lints(int vcpu_fd) {
  kvm_lapic_state lapic{};
  if (::ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic) != 0) return ioctl_error("KVM_GET_LAPIC");
  auto set_reg = [&](size_t off, uint32_t v) { std::memcpy(&lapic.regs[off], &v, 4); };
  auto get_reg = [&](size_t off) {
    uint32_t v;
    std::memcpy(&v, &lapic.regs[off], 4);
    return v;
  };
  constexpr size_t kLvtLint0 = 0x350, kLvtLint1 = 0x360;
  constexpr uint32_t kDeliveryExtInt = 7 << 8, kDeliveryNmi = 4 << 8, kDeliveryMask = 7 << 8;
  set_reg(kLvtLint0, (get_reg(kLvtLint0) & ~kDeliveryMask) | kDeliveryExtInt);
  set_reg(kLvtLint1, (get_reg(kLvtLint1) & ~kDeliveryMask) | kDeliveryNmi);
  if (::ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic) != 0) return ioctl_error("KVM_SET_LAPIC");
  return ok_status();
}

Status setup_fpu(int vcpu_fd) {
  kvm_fpu fpu{};
  fpu.fcw = 0x37f;
  fpu.mxcsr = 0x1f80;
  if (::ioctl(vcpu_fd, KVM_SET_FPU, &fpu) != 0) return ioctl_error("KVM_SET_FPU");
  return ok_status();
}

Status setup_msrs(int vcpu_fd, const CpuTemplate& tmpl) {
  std::vector<std::pair<uint32_t, uint64_t>> boot = {
      {kMsrSysenterCs, 0}, {kMsrSysenterEsp, 0}, {kMsrSysenterEip, 0}, {kMsrStar, 0},
      {kMsrCstar, 0},      {kMsrKernelGsBase, 0}, {kMsrSyscallMask, 0}, {kMsrLstar, 0},
      {kMsrTsc, 0},        {kMsrMiscEnable, kMiscEnableFastStrings},
  };
  KINDLING_TRY(set_boot, set_msr_list(vcpu_fd, boot));
  (void)set_boot;
  std::vector<std::pair<uint32_t, uint64_t>> templated;
  for (const auto& m : tmpl.msrs) {
    KINDLING_TRY(current, get_msr(vcpu_fd, m.addr));
    templated.emplace_back(m.addr, m.bits.apply(current));
  }
  return set_msr_list(vcpu_fd, templated);
}

Status setup_pvh_boot_regs(int vcpu_fd, uint64_t entry, uint64_t start_info_addr) {
  kvm_sregs sregs{};
  if (::ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) != 0) return ioctl_error("KVM_GET_SREGS");
  sregs.cs = flat_segment(0x08, 0xb, false);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = flat_segment(0x10, 0x3, false);
  set_task_and_ldt(sregs);
  sregs.cr0 = kCr0Pe | kCr0Et;
  sregs.cr3 = 0;
  sregs.cr4 = 0;
  sregs.efer = 0;
  if (::ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) != 0) return ioctl_error("KVM_SET_SREGS");

  kvm_regs regs{};
  regs.rflags = 0x2;
  regs.rip = entry;
  regs.rbx = start_info_addr;
  if (::ioctl(vcpu_fd, KVM_SET_REGS, &regs) != 0) return ioctl_error("KVM_SET_REGS");
  return ok_status();
}

Status setup_linux64_boot_regs(int vcpu_fd, const GuestMemory& mem, uint64_t entry, uint64_t boot_params_addr) {
  // GDT: null, code64, data, TSS placeholder — the selectors Linux expects (0x10, 0x18).
  const std::array<uint64_t, 4> gdt = {0, 0x00af9b000000ffff, 0x00cf93000000ffff, 0x008f8b000000ffff};
  KINDLING_TRY(g, mem.write_obj(layout::kGdtAddr, gdt));
  KINDLING_TRY(i, mem.write_obj(layout::kIdtAddr, uint64_t{0}));
  // Identity map of the first 1 GiB with 2 MiB pages; Linux builds its own.
  KINDLING_TRY(p4, mem.write_obj(layout::kPml4Addr, uint64_t{layout::kPdptAddr | 0x3}));
  KINDLING_TRY(p3, mem.write_obj(layout::kPdptAddr, uint64_t{layout::kPdAddr | 0x3}));
  for (uint64_t n = 0; n < 512; ++n) {
    KINDLING_TRY(p2, mem.write_obj(layout::kPdAddr + n * 8, (n << 21) | 0x83));
    (void)p2;
  }
  (void)g, (void)i, (void)p4, (void)p3;

  kvm_sregs sregs{};
  if (::ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) != 0) return ioctl_error("KVM_GET_SREGS");
  sregs.gdt.base = layout::kGdtAddr;
  sregs.gdt.limit = sizeof(gdt) - 1;
  sregs.idt.base = layout::kIdtAddr;
  sregs.idt.limit = 7;
  sregs.cs = flat_segment(0x08, 0xb, true);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = flat_segment(0x10, 0x3, false);
  set_task_and_ldt(sregs);
  sregs.cr0 = kCr0Pe | kCr0Et | kCr0Pg;
  sregs.cr3 = layout::kPml4Addr;
  sregs.cr4 = kCr4Pae;
  sregs.efer = kEferLme | kEferLma;
  if (::ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) != 0) return ioctl_error("KVM_SET_SREGS");

  kvm_regs regs{};
  regs.rflags = 0x2;
  regs.rip = entry;
  regs.rsi = boot_params_addr;
  regs.rsp = regs.rbp = 0x8ff0;  // below the page tables; Linux switches stacks at once
  if (::ioctl(vcpu_fd, KVM_SET_REGS, &regs) != 0) return ioctl_error("KVM_SET_REGS");
  return ok_status();
}

}  // namespace kindling::vmm
