// outside_memory: writes and reads guest-physical addresses that no RAM or
// device backs. The VMM must neither crash nor let the write land anywhere;
// reads come back as all ones, like an open bus.
#include "lib/kt.hpp"

namespace kt {

void run(const StartInfo*) {
  begin("outside_memory");
  constexpr uint64_t kHole = 0xc0001000;      // in the 32-bit MMIO hole, below any device
  constexpr uint64_t kAboveRam = 0x3f000000;  // above the guest's RAM in these tests
  mmio_write32(kHole, 0xdeadbeef);
  check(mmio_read32(kHole) == 0xffffffff, "hole_reads_all_ones", "unbacked read returned data");
  mmio_write32(kAboveRam, 0x12345678);
  check(mmio_read32(kAboveRam) == 0xffffffff, "above_ram_reads_all_ones", "write beyond RAM stuck");
  info("guest still alive after stray accesses");
}

}  // namespace kt
