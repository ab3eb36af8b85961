// triple_fault: loads an empty IDT and raises an exception, so the CPU shuts
// down. The VMM must end with its guest-shutdown status, distinct from the
// i8042 reset status.
#include "lib/kt.hpp"

namespace kt {

void run(const StartInfo*) {
  begin("triple_fault");
  info("loading an empty IDT and raising #BP");
  struct [[gnu::packed]] {
    uint16_t limit;
    uint64_t base;
  } idtr{0, 0};
  asm volatile("lidt %0; int3" ::"m"(idtr));
  check(false, "unreachable", "the CPU survived a triple fault");
}

}  // namespace kt
