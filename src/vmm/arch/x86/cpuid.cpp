#include "vmm/arch/x86/cpuid.hpp"

namespace kindling::vmm {
namespace {

constexpr uint32_t kLeaf1EcxHypervisor = 1u << 31;
constexpr uint32_t kLeaf1EdxHtt = 1u << 28;

}  // namespace

std::vector<kvm_cpuid_entry2> cpuid_for_vcpu(const std::vector<kvm_cpuid_entry2>& supported, uint32_t vcpu_index,
                                             uint32_t vcpu_count, const CpuTemplate& tmpl) {
  std::vector<kvm_cpuid_entry2> entries = supported;
  for (auto& e : entries) {
    switch (e.function) {
      case 0x1:
        // ebx[31:24] initial APIC id, ebx[23:16] logical processors per package.
        e.ebx = (e.ebx & 0x0000ffff) | (vcpu_index << 24) | ((vcpu_count & 0xff) << 16);
        e.ecx |= kLeaf1EcxHypervisor;
        if (vcpu_count > 1) e.edx |= kLeaf1EdxHtt; else e.edx &= ~kLeaf1EdxHtt;
        break;
      case 0xb:
      case 0x1f:
        e.edx = vcpu_index;  // x2APIC id
        break;
      default:
        break;
    }
  }
  apply_cpuid_template(tmpl, entries);
  return entries;
}

}  // namespace kindling::vmm
