#include "kt.hpp"

namespace kt {
namespace {

constexpr uint16_t kCom1 = 0x3f8;
constexpr uint16_t kI8042Command = 0x64;
constexpr uint8_t kI8042PulseReset = 0xfe;

volatile uint32_t g_serial_lock = 0;
uint32_t g_pass = 0;
uint32_t g_fail = 0;

void lock() {
  while (__atomic_exchange_n(&g_serial_lock, 1u, __ATOMIC_ACQUIRE) != 0) pause();
}
void unlock() { __atomic_store_n(&g_serial_lock, 0u, __ATOMIC_RELEASE); }

void raw_putc(char c) {
  // THR-empty is polled for real UARTs (QEMU); kindling-vmm always reports it.
  while ((inb(kCom1 + 5) & 0x20) == 0) pause();
  outb(kCom1, static_cast<uint8_t>(c));
}

}  // namespace

void putc(char c) { raw_putc(c); }
void puts(const char* s) {
  while (*s) raw_putc(*s++);
}
void put_dec(uint64_t v) { Line().dec(v).end(); }
void put_hex(uint64_t v) { Line().hex(v).end(); }

Line& Line::str(const char* s) {
  while (*s && len_ < sizeof(buf_) - 1) buf_[len_++] = *s++;
  return *this;
}
Line& Line::dec(uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0 && len_ < sizeof(buf_) - 1) buf_[len_++] = tmp[--n];
  return *this;
}
Line& Line::hex(uint64_t v) {
  str("0x");
  bool started = false;
  for (int shift = 60; shift >= 0; shift -= 4) {
    unsigned nibble = (v >> shift) & 0xf;
    if (nibble == 0 && !started && shift != 0) continue;
    started = true;
    if (len_ < sizeof(buf_) - 1) buf_[len_++] = "0123456789abcdef"[nibble];
  }
  return *this;
}
void Line::end() {
  buf_[len_++] = '\n';
  lock();
  for (size_t i = 0; i < len_; ++i) raw_putc(buf_[i]);
  unlock();
  len_ = 0;
}

void begin(const char* test_name) { Line().str("KT BEGIN ").str(test_name).end(); }
void info(const char* text) { Line().str("KT INFO ").str(text).end(); }
void check(bool ok, const char* name, const char* why) {
  if (ok) {
    ++g_pass;
    Line().str("KT PASS ").str(name).end();
  } else {
    ++g_fail;
    Line().str("KT FAIL ").str(name).str(" ").str(why).end();
  }
}

void reset_via_i8042() {
  outb(kI8042Command, kI8042PulseReset);
  // Machines without an i8042 (QEMU microvm) ignore the write: fall back to a
  // triple fault, which `qemu -no-reboot` also treats as the end.
  struct [[gnu::packed]] {
    uint16_t limit;
    uint64_t base;
  } empty_idt{0, 0};
  asm volatile("cli; lidt %0; int3" ::"m"(empty_idt));
  for (;;) asm volatile("cli; hlt");
}

void finish() {
  Line().str("KT END ").dec(g_pass).str(" ").dec(g_fail).end();
  reset_via_i8042();
}

[[gnu::weak]] void ap_run(uint32_t) {
  for (;;) asm volatile("cli; hlt");
}

}  // namespace kt

// String instructions, not loops: a compiler may turn a copy loop back into a
// call to memcpy, which here would recurse.
extern "C" void* memcpy(void* d, const void* s, size_t n) {
  void* ret = d;
  asm volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
  return ret;
}
extern "C" void* memset(void* d, int c, size_t n) {
  void* ret = d;
  asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
  return ret;
}

extern "C" void kt_main(uint32_t start_info_phys) {
  kt::run(reinterpret_cast<const kt::StartInfo*>(static_cast<uintptr_t>(start_info_phys)));
  kt::finish();
}
extern "C" void kt_ap_main(uint32_t ap_index) { kt::ap_run(ap_index); }
