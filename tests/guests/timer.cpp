// timer: time moves for the guest — TSC, the PIT's channel 0 counter and the
// LAPIC timer's current count all change as the guest runs.
#include "lib/kt.hpp"

namespace kt {
namespace {

constexpr uint64_t kLapic = 0xfee00000;

uint16_t pit_ch0_count() {
  outb(0x43, 0x00);  // latch channel 0
  uint8_t lo = inb(0x40);
  uint8_t hi = inb(0x40);
  return static_cast<uint16_t>(lo | (hi << 8));
}

void busy(uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) asm volatile("" ::: "memory");
}

}  // namespace

void run(const StartInfo*) {
  begin("timer");
  uint64_t t0 = rdtsc();
  busy(200);
  uint64_t t1 = rdtsc();
  check(t1 > t0, "tsc_advances", "TSC did not move");

  outb(0x43, 0x34);  // channel 0, lo/hi byte, mode 2 (rate generator)
  outb(0x40, 0xff);
  outb(0x40, 0xff);
  uint16_t p0 = pit_ch0_count();
  busy(200);
  uint16_t p1 = pit_ch0_count();
  Line().str("KT INFO pit ").dec(p0).str(" -> ").dec(p1).end();
  check(p0 != p1, "pit_counter_moves", "PIT channel 0 count did not change");

  mmio_write32(kLapic + 0xf0, 0x1ff);          // enable
  mmio_write32(kLapic + 0x3e0, 0xb);           // divide by 1
  mmio_write32(kLapic + 0x320, (1u << 16) | 0x40);  // masked one-shot
  mmio_write32(kLapic + 0x380, 0xffffffff);
  uint32_t l0 = mmio_read32(kLapic + 0x390);
  busy(200);
  uint32_t l1 = mmio_read32(kLapic + 0x390);
  Line().str("KT INFO lapic ").dec(l0).str(" -> ").dec(l1).end();
  check(l1 < l0, "lapic_timer_counts_down", "LAPIC current count did not decrease");
}

}  // namespace kt
