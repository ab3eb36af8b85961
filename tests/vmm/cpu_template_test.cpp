#include "vmm/arch/x86/cpu_template.hpp"

#include <gtest/gtest.h>

#include "vmm/arch/x86/cpuid.hpp"

namespace kindling::vmm {
namespace {

TEST(CpuTemplate, ParsesBitmapsAndAppliesMasks) {
  auto t = parse_cpu_template(R"({"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0,
      "modifiers": [{"register": "ecx", "bitmap": "0b1xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx0"}]}],
      "msr_modifiers": [{"addr": "0x1a0", "bitmap": "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx1"}]})");
  ASSERT_TRUE(t) << t.error().message;
  ASSERT_EQ(t->cpuid.size(), 1u);
  EXPECT_EQ(t->cpuid[0].bits.mask, 0x80000001u);
  EXPECT_EQ(t->cpuid[0].bits.value, 0x80000000u);
  ASSERT_EQ(t->msrs.size(), 1u);
  EXPECT_EQ(t->msrs[0].bits.apply(0x10), 0x11u);

  std::vector<kvm_cpuid_entry2> entries(1);
  entries[0].function = 1;
  entries[0].ecx = 0x00000001;
  apply_cpuid_template(*t, entries);
  EXPECT_EQ(entries[0].ecx, 0x80000000u);
}

TEST(CpuTemplate, AddsMissingLeaf) {
  auto t = parse_cpu_template(R"({"cpuid_modifiers": [{"leaf": "0x40000010", "subleaf": "0x0", "flags": 0,
      "modifiers": [{"register": "eax", "bitmap": "0b00000000000000000000000000000101"}]}]})");
  ASSERT_TRUE(t);
  std::vector<kvm_cpuid_entry2> entries;
  apply_cpuid_template(*t, entries);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].function, 0x40000010u);
  EXPECT_EQ(entries[0].eax, 5u);
}

TEST(CpuTemplate, RejectsBadTemplates) {
  EXPECT_FALSE(parse_cpu_template("{"));
  EXPECT_FALSE(parse_cpu_template(R"({"cpuid_modifiers": [{"leaf": "0x1", "modifiers": [{"register": "exx", "bitmap": "0b0"}]}]})"));
  EXPECT_FALSE(parse_cpu_template(R"({"cpuid_modifiers": [{"leaf": "0x1", "modifiers": [{"register": "eax", "bitmap": "0b01"}]}]})"));
  EXPECT_FALSE(parse_cpu_template(R"({"msr_modifiers": [{"addr": "zz", "bitmap": "0b0"}]})"));
  EXPECT_FALSE(parse_cpu_template(R"({"bogus": []})"));
}

TEST(Cpuid, TopologyIsPerVcpu) {
  std::vector<kvm_cpuid_entry2> supported(2);
  supported[0].function = 1;
  supported[0].ebx = 0xaabb1234;
  supported[1].function = 0xb;
  auto e = cpuid_for_vcpu(supported, 3, 4, CpuTemplate{});
  EXPECT_EQ(e[0].ebx >> 24, 3u);
  EXPECT_EQ((e[0].ebx >> 16) & 0xff, 4u);
  EXPECT_EQ(e[0].ebx & 0xffff, 0x1234u);
  EXPECT_TRUE(e[0].ecx & (1u << 31));
  EXPECT_EQ(e[1].edx, 3u);
}

}  // namespace
}  // namespace kindling::vmm
