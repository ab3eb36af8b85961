// CPU templates: bit masks over CPUID results and MSR values, in
// Firecracker's custom-template JSON layout:
//   {"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0,
//       "modifiers": [{"register": "ecx", "bitmap": "0bxx..x1..0"}]}],
//    "msr_modifiers": [{"addr": "0x10a", "bitmap": "0b...64 chars..."}]}
// A bitmap has one character per bit, most significant first: '0' and '1'
// force the bit, 'x' leaves it as KVM reports it.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace kindling::vmm {

struct BitmapModifier {
  uint64_t mask = 0;   // bits the template decides
  uint64_t value = 0;  // their values
  uint64_t apply(uint64_t v) const { return (v & ~mask) | (value & mask); }
};

struct CpuidModifier {
  uint32_t leaf = 0;
  uint32_t subleaf = 0;
  uint32_t flags = 0;
  enum class Register { kEax, kEbx, kEcx, kEdx } reg = Register::kEax;
  BitmapModifier bits;
};

struct MsrModifier {
  uint32_t addr = 0;
  BitmapModifier bits;
};

struct CpuTemplate {
  std::vector<CpuidModifier> cpuid;
  std::vector<MsrModifier> msrs;
  bool empty() const { return cpuid.empty() && msrs.empty(); }
};

// Parses and validates a template document (see above). Errors name the field.
Result<CpuTemplate> parse_cpu_template(std::string_view json_text);

// Applies the CPUID modifiers, adding a leaf the template names but KVM lacks.
void apply_cpuid_template(const CpuTemplate& tmpl, std::vector<kvm_cpuid_entry2>& entries);

}  // namespace kindling::vmm
