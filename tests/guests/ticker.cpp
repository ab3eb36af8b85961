// ticker: prints "KT TICK n" at a steady TSC-paced rate until a key arrives
// at the i8042 (SendCtrlAltDel), then ends. Tests pause/resume against it.
#include "lib/kt.hpp"

namespace kt {

void run(const StartInfo*) {
  begin("ticker");
  constexpr uint64_t kTickCycles = 100'000'000;  // tens of ms on any host clock
  uint64_t next = rdtsc();
  for (uint64_t tick = 0;; ++tick) {
    while (rdtsc() < next) pause();
    next += kTickCycles;
    Line().str("KT TICK ").dec(tick).end();
    if (inb(0x64) & 1) {  // i8042 output buffer full: a key came in
      uint8_t scancode = inb(0x60);
      Line().str("KT INFO key ").hex(scancode).end();
      check(true, "ctrl_alt_del_received");
      return;
    }
  }
}

}  // namespace kt
