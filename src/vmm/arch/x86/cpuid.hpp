// The CPUID table one vCPU sees: KVM's supported set, made truthful about the
// VM's topology (APIC ids, CPU count) and then filtered by the CPU template.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "vmm/arch/x86/cpu_template.hpp"

namespace kindling::vmm {

std::vector<kvm_cpuid_entry2> cpuid_for_vcpu(const std::vector<kvm_cpuid_entry2>& supported, uint32_t vcpu_index,
                                             uint32_t vcpu_count, const CpuTemplate& tmpl);

}  // namespace kindling::vmm
