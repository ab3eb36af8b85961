// spin: a runaway guest — interrupts off, a tight loop, never any exit. The
// VMM must stay responsive (API, pause, SIGTERM) while it runs.
#include "lib/kt.hpp"

namespace kt {

void run(const StartInfo*) {
  begin("spin");
  info("spinning forever with interrupts off");
  asm volatile("cli");
  for (;;) asm volatile("" ::: "memory");
}

}  // namespace kt
