// The guest's physical memory map as boot protocols report it (E820 types).
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/memory/guest_memory.hpp"

namespace kindling::vmm {

struct E820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};
inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

std::vector<E820Entry> build_e820(const GuestMemory& mem);

}  // namespace kindling::vmm
