// Initial x86 vCPU state for each boot protocol, plus the LAPIC, FPU and MSR
// defaults every vCPU needs. Functions take the vCPU fd so they stay free of
// the threading in kvm/vcpu.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "common/result.hpp"
#include "vmm/arch/x86/cpu_template.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace kindling::vmm {

Status set_vcpu_cpuid(int vcpu_fd, const std::vector<kvm_cpuid_entry2>& entries);
// LINT0 as ExtINT (the PIC), LINT1 as NMI: what firmware leaves for Linux.
Status setup_lapic_lints(int vcpu_fd);
Status setup_fpu(int vcpu_fd);
// Boot MSRs (sysenter, star, misc-enable fast strings...), then the template's MSR masks.
Status setup_msrs(int vcpu_fd, const CpuTemplate& tmpl);

// PVH: 32-bit protected mode, paging off, flat segments, %ebx = start_info.
Status setup_pvh_boot_regs(int vcpu_fd, uint64_t entry, uint64_t start_info_addr);
// Linux 64-bit boot protocol: long mode with identity page tables and a GDT
// written into guest memory, %rsi = boot_params.
Status setup_linux64_boot_regs(int vcpu_fd, const GuestMemory& mem, uint64_t entry, uint64_t boot_params_addr);

}  // namespace kindling::vmm
