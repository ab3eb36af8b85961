// Kindling test-guest library: port and MMIO access, COM1 output, and the
// report protocol that tests/vmm reads from the serial log:
//   "KT BEGIN <name>"          guest started
//   "KT INFO <text>"           anything worth keeping in the log
//   "KT PASS <name>"           a check held
//   "KT FAIL <name> <why>"     a check failed
//   "KT END <pass> <fail>"     totals, printed just before the guest resets
// Guests are freestanding: no libc, no SSE, no heap, no interrupts unless a
// test sets them up itself.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kt {

inline void outb(uint16_t port, uint8_t v) { asm volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
inline uint8_t inb(uint16_t port) {
  uint8_t v;
  asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
inline void mmio_write32(uint64_t addr, uint32_t v) { *reinterpret_cast<volatile uint32_t*>(addr) = v; }
inline uint32_t mmio_read32(uint64_t addr) { return *reinterpret_cast<volatile uint32_t*>(addr); }
inline uint64_t rdtsc() {
  uint32_t lo, hi;
  asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (uint64_t(hi) << 32) | lo;
}
inline void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t r[4]) {
  asm volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(subleaf));
}
inline void pause() { asm volatile("pause"); }

// Layout of the PVH hvm_start_info the loader hands us (version 1).
struct StartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};
struct MemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};
constexpr uint32_t kStartInfoMagic = 0x336ec578;

void putc(char c);
void puts(const char* s);
void put_dec(uint64_t v);
void put_hex(uint64_t v);

// One serial line assembled in a buffer and written at once, so lines from
// several CPUs never interleave.
class Line {
 public:
  Line& str(const char* s);
  Line& dec(uint64_t v);
  Line& hex(uint64_t v);
  void end();  // appends '\n' and writes the line under the serial lock

 private:
  char buf_[160];
  size_t len_ = 0;
};

void begin(const char* test_name);
void check(bool ok, const char* name, const char* why = "");
void info(const char* text);
// Prints "KT END" and resets through the i8042 controller (never returns).
[[noreturn]] void finish();
[[noreturn]] void reset_via_i8042();

// Test hooks each guest defines.
void run(const StartInfo* info);          // on the BSP
void ap_run(uint32_t ap_index);           // on each AP (default: park)

}  // namespace kt

extern "C" void* memcpy(void* d, const void* s, size_t n);
extern "C" void* memset(void* d, int c, size_t n);
