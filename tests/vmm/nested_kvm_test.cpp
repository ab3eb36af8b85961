// What this machine's nested hypervisor (kvm_pvm) does with the CPUID table a
// VMM sets, shown by the cpuid_probe guest. docs/vmm-nested-kvm.md explains
// the findings; on hardware KVM the same test expects every mask to apply.
#include <cpuid.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vmm_process.hpp"

namespace kindling::vmm::test {
namespace {

using namespace std::chrono_literals;

struct Regs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

// Parses "KT CPUID <leaf> <subleaf> <eax> <ebx> <ecx> <edx>" lines (hex).
std::map<uint32_t, Regs> parse_cpuid_lines(const std::string& serial) {
  std::map<uint32_t, Regs> out;
  std::istringstream in(serial);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("KT CPUID ", 0) != 0) continue;
    std::istringstream f(line.substr(9));
    std::string leaf, sub, a, b, c, d;
    f >> leaf >> sub >> a >> b >> c >> d;
    out[static_cast<uint32_t>(std::stoul(leaf, nullptr, 16))] = {
        static_cast<uint32_t>(std::stoul(a, nullptr, 16)), static_cast<uint32_t>(std::stoul(b, nullptr, 16)),
        static_cast<uint32_t>(std::stoul(c, nullptr, 16)), static_cast<uint32_t>(std::stoul(d, nullptr, 16))};
  }
  return out;
}

std::string bitmap32(uint32_t mask, uint32_t value) {
  std::string s = "0b";
  for (int bit = 31; bit >= 0; --bit) s += (mask >> bit & 1) ? ((value >> bit & 1) ? '1' : '0') : 'x';
  return s;
}

TEST(NestedKvm, WhichCpuidTemplateMasksReachTheGuest) {
  constexpr uint32_t kAvx = 1u << 28;
  nlohmann::json tmpl = {{"cpuid_modifiers", {
      {{"leaf", "0x0"}, {"subleaf", "0x0"}, {"flags", 0}, {"modifiers", {{{"register", "eax"}, {"bitmap", bitmap32(~0u, 0xd)}}}}},
      {{"leaf", "0x1"}, {"subleaf", "0x0"}, {"flags", 0}, {"modifiers", {
          {{"register", "eax"}, {"bitmap", bitmap32(~0u, 0x7f0)}},
          {{"register", "ecx"}, {"bitmap", bitmap32(kAvx, 0)}}}}},
      {{"leaf", "0x40000000"}, {"subleaf", "0x0"}, {"flags", 0}, {"modifiers", {{{"register", "edx"}, {"bitmap", bitmap32(~0u, 0x5a)}}}}},
  }}};
  nlohmann::json config = {
      {"boot-source", {{"kernel_image_path", guest_path("cpuid_probe")}}},
      {"machine-config", {{"vcpu_count", 3}, {"mem_size_mib", 64}}},
      {"cpu-config", tmpl},
  };
  TempDir dir;
  write_file(dir.file("vm.json"), config.dump());
  VmmProcess vmm({"--config-file", dir.file("vm.json"), "--no-api"}, dir);
  ASSERT_EQ(vmm.wait(30s).value_or(-1), 0) << vmm.stderr_text();
  auto seen = parse_cpuid_lines(vmm.stdout_text());
  ASSERT_TRUE(seen.count(0) && seen.count(1) && seen.count(0x40000000)) << vmm.stdout_text();

  // Whole-register values and topology reach the guest on both kinds of host.
  EXPECT_EQ(seen[0].eax, 0xdu);
  EXPECT_EQ(seen[1].eax, 0x7f0u);
  EXPECT_EQ(seen[0x40000000].edx, 0x5au);
  EXPECT_EQ((seen[1].ebx >> 16) & 0xff, 3u) << "logical CPU count from our table";

  unsigned a, b, c, d;
  __cpuid_count(1, 0, a, b, c, d);
  const bool host_has_avx = c & kAvx;
  if (running_on_pvm()) {
    // kvm_pvm: leaf 1 ECX shows the host CPU's feature bits, not our table.
    // The masked AVX bit is still visible when the host has AVX.
    EXPECT_EQ(static_cast<bool>(seen[1].ecx & kAvx), host_has_avx)
        << std::hex << "guest leaf1.ecx=" << seen[1].ecx << " host=" << c;
  } else {
    EXPECT_FALSE(seen[1].ecx & kAvx) << "hardware KVM must apply the template mask";
  }
}

}  // namespace
}  // namespace kindling::vmm::test
