// virtio_rng: finds the entropy device on the command line, reads random
// bytes through its own tiny driver and prints them (the host test compares
// two runs), checks that the used-buffer interrupt arrives on the IOAPIC pin
// the command line named (irqfd), then behaves as a hostile driver — a
// looping chain, a buffer outside guest memory, a head index past the queue,
// a wrapping address — and checks that the device answers each with
// DEVICE_NEEDS_RESET and works again after a reset.
#include "lib/kt.hpp"
#include "lib/virtio.hpp"

namespace kt {
namespace {

using namespace virtio;

QueueMemory g_qmem;
Queue g_q;
uint8_t g_buf[64];

bool bring_up(uint64_t base) {
  return init(base, kFEventIdx | kFIndirect) && setup_queue(base, 0, g_q, g_qmem, 16) && (driver_ok(base), true);
}

bool read_entropy(uint8_t* out, uint32_t n) {
  memset(out, 0, n);
  Buf b{out, n, true};
  return transfer(g_q, &b, 1) == n;
}

void print_hex(const char* label, const uint8_t* p, uint32_t n) {
  char text[2 * 64 + 1];
  for (uint32_t i = 0; i < n && i < 64; ++i) {
    text[2 * i] = "0123456789abcdef"[p[i] >> 4];
    text[2 * i + 1] = "0123456789abcdef"[p[i] & 15];
  }
  text[2 * (n < 64 ? n : 64)] = 0;
  Line().str("KT INFO ").str(label).str(" ").str(text).end();
}

// Just enough of an interrupt setup to see the device's irqfd arrive: an
// IDT whose every gate counts, the legacy PIC masked, the LAPIC enabled and
// one IOAPIC pin routed to vector 0x30.
constexpr uint8_t kVector = 0x30;
volatile uint32_t g_irqs = 0, g_stray = 0;

struct InterruptFrame;
[[gnu::interrupt]] void on_device_irq(InterruptFrame*) {
  g_irqs = g_irqs + 1;
  mmio_write32(0xfee000b0, 0);  // LAPIC EOI
}
[[gnu::interrupt]] void on_stray(InterruptFrame*) {
  g_stray = g_stray + 1;
  mmio_write32(0xfee000b0, 0);
}

struct [[gnu::packed]] Gate {
  uint16_t off0, sel;
  uint8_t ist, attr;
  uint16_t off1;
  uint32_t off2, zero;
};
Gate g_idt[256];

void set_gate(int v, void (*fn)(InterruptFrame*)) {
  uint64_t a = reinterpret_cast<uint64_t>(fn);
  uint16_t cs;
  asm volatile("mov %%cs, %0" : "=r"(cs));
  g_idt[v] = Gate{static_cast<uint16_t>(a), cs, 0, 0x8e, static_cast<uint16_t>(a >> 16), static_cast<uint32_t>(a >> 32), 0};
}

void route_irq(uint32_t pin) {
  for (int v = 0; v < 256; ++v) set_gate(v, on_stray);
  set_gate(kVector, on_device_irq);
  struct [[gnu::packed]] {
    uint16_t limit;
    uint64_t base;
  } idtr{sizeof(g_idt) - 1, reinterpret_cast<uint64_t>(g_idt)};
  asm volatile("lidt %0" ::"m"(idtr));
  outb(0x21, 0xff);  // mask the 8259s: the IOAPIC alone delivers
  outb(0xa1, 0xff);
  mmio_write32(0xfee000f0, 0x1ff);  // LAPIC software enable
  mmio_write32(0xfec00000, 0x10 + 2 * pin + 1);
  mmio_write32(0xfec00010, 0);      // destination APIC 0
  mmio_write32(0xfec00000, 0x10 + 2 * pin);
  mmio_write32(0xfec00010, kVector);  // fixed, physical, edge, active high, unmasked
  asm volatile("sti");
}

bool wait_needs_reset(uint64_t base) {
  for (uint64_t i = 0; i < 100'000'000; ++i) {
    if (status(base) & kStatusNeedsReset) return true;
    pause();
  }
  return false;
}

}  // namespace

void run(const StartInfo* si) {
  begin("virtio_rng");
  uint32_t irq = 0;
  uint64_t base = find(si, kDeviceEntropy, &irq);
  check(base != 0, "rng_found_on_cmdline", "no virtio_mmio.device entry for an entropy device");
  if (!base) return;
  Line().str("KT INFO rng at ").hex(base).str(" irq ").dec(irq).end();
  check(bring_up(base), "rng_driver_ok", "feature negotiation or queue setup refused");
  route_irq(irq);

  check(read_entropy(g_buf, 64), "rng_read_64_bytes", "short or no answer");
  print_hex("entropy", g_buf, 64);
  uint32_t nonzero = 0;
  for (uint8_t b : g_buf) nonzero += b != 0;
  check(nonzero > 32, "rng_bytes_not_all_zero", "mostly zero bytes");
  check((mmio_read32(base + kRegInterruptStatus) & 1) == 1, "rng_used_buffer_interrupt_latched", "no interrupt status");
  for (uint64_t i = 0; i < 100'000'000 && g_irqs == 0; ++i) pause();
  Line().str("KT INFO irqs ").dec(g_irqs).str(" stray ").dec(g_stray).end();
  check(g_irqs >= 1 && g_stray == 0, "rng_interrupt_delivered_through_ioapic", "no interrupt on the device's pin");
  mmio_write32(base + kRegInterruptAck, 1);
  asm volatile("cli");

  uint8_t second[64];
  check(read_entropy(second, 64), "rng_second_read", "short or no answer");
  bool same = true;
  for (int i = 0; i < 64; ++i) same = same && second[i] == g_buf[i];
  check(!same, "rng_reads_differ", "two reads returned the same bytes");

  // Hostile: a chain that loops back on itself.
  g_q.desc[0] = {reinterpret_cast<uint64_t>(g_buf), 8, kDescWrite | kDescNext, 1};
  g_q.desc[1] = {reinterpret_cast<uint64_t>(g_buf), 8, kDescWrite | kDescNext, 0};
  publish_head(g_q, 0);
  notify(g_q);
  check(wait_needs_reset(base), "loop_chain_needs_reset", "device did not flag a looping chain");
  check(bring_up(base) && read_entropy(g_buf, 16), "works_after_reset_from_loop", "no entropy after a reset");

  // Hostile: a buffer far outside guest memory.
  g_q.desc[0] = {0x7fff00000000ull, 4096, kDescWrite, 0};
  publish_head(g_q, 0);
  notify(g_q);
  check(wait_needs_reset(base), "out_of_range_buffer_needs_reset", "device accepted a buffer outside RAM");
  check(bring_up(base) && read_entropy(g_buf, 16), "works_after_reset_from_range", "no entropy after a reset");

  // Hostile: a head index past the end of the queue, and a wrapping length.
  publish_head(g_q, 999);
  notify(g_q);
  check(wait_needs_reset(base), "bad_head_needs_reset", "device accepted head 999 on a queue of 16");
  check(bring_up(base), "reinit_after_bad_head", "reset failed");
  g_q.desc[0] = {0xfffffffffffff000ull, 0x2000, kDescWrite, 0};
  publish_head(g_q, 0);
  notify(g_q);
  check(wait_needs_reset(base), "wrapping_buffer_needs_reset", "device accepted a buffer that wraps the address space");
  check(bring_up(base) && read_entropy(g_buf, 64), "works_at_the_end", "no entropy after a reset");
}

}  // namespace kt
