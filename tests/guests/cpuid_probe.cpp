// cpuid_probe: prints what CPUID tells the guest, so a test can compare it
// with what the VMM asked KVM to expose (KVM_SET_CPUID2). On a hypervisor that
// does not intercept CPUID the two differ; docs/vmm-nested-kvm.md explains.
#include "lib/kt.hpp"

namespace kt {
namespace {

void show(uint32_t leaf, uint32_t subleaf) {
  uint32_t r[4];
  cpuid(leaf, subleaf, r);
  Line().str("KT CPUID ").hex(leaf).str(" ").hex(subleaf).str(" ").hex(r[0]).str(" ").hex(r[1])
      .str(" ").hex(r[2]).str(" ").hex(r[3]).end();
}

}  // namespace

void run(const StartInfo*) {
  begin("cpuid_probe");
  show(0x0, 0);
  show(0x1, 0);
  show(0x7, 0);
  show(0x40000000, 0);
  show(0x80000001, 0);
  check(true, "cpuid_printed");
}

}  // namespace kt
