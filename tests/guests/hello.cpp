// serial_hello: the smallest guest — proves PVH entry, long mode, COM1 output,
// the start_info the loader built, and the i8042 reset that ends the VM.
#include "lib/kt.hpp"

namespace kt {

void run(const StartInfo* si) {
  begin("serial_hello");
  puts("Hello from a Kindling test guest\n");
  check(si->magic == kStartInfoMagic, "start_info_magic", "wrong hvm_start_info magic");
  bool has_ram = false;
  if (si->version >= 1 && si->memmap_entries > 0) {
    const auto* map = reinterpret_cast<const MemmapEntry*>(si->memmap_paddr);
    for (uint32_t i = 0; i < si->memmap_entries; ++i) {
      if (map[i].type == 1 && map[i].addr <= 0x100000 && map[i].addr + map[i].size > 0x200000) has_ram = true;
    }
  }
  check(has_ram, "memmap_has_ram_at_1mib", "no RAM entry covering the kernel");
}

}  // namespace kt
