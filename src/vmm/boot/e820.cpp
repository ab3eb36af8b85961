#include "vmm/boot/e820.hpp"

#include "vmm/arch/x86/layout.hpp"

namespace kindling::vmm {

std::vector<E820Entry> build_e820(const GuestMemory& mem) {
  std::vector<E820Entry> map;
  map.push_back({0, layout::kEbdaStart, kE820Ram});
  map.push_back({layout::kEbdaStart, layout::kLowRamEnd - layout::kEbdaStart, kE820Reserved});
  for (const auto& r : mem.regions()) {
    uint64_t start = r.guest_addr < layout::kHighMemStart ? layout::kHighMemStart : r.guest_addr;
    uint64_t end = r.guest_addr + r.size;
    if (end > start) map.push_back({start, end - start, kE820Ram});
  }
  return map;
}

}  // namespace kindling::vmm
