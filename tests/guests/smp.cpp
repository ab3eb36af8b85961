// smp: finds the CPUs in the MP table, starts every AP with INIT/SIPI through
// the local APIC, and checks that each one runs long-mode code and reports.
#include "lib/kt.hpp"

namespace kt {
namespace {

constexpr uint64_t kLapic = 0xfee00000;
constexpr uint32_t kLapicSvr = 0xf0, kLapicIcrLow = 0x300, kLapicIcrHigh = 0x310;
constexpr uint32_t kTrampolineAddr = 0x8000;  // SIPI vector 0x08
constexpr uint32_t kMaxCpus = 32;

volatile uint32_t g_arrived = 0;
volatile uint32_t g_apic_seen[kMaxCpus];

extern "C" char kt_trampoline_start[], kt_trampoline_end[];

uint8_t sum(const uint8_t* p, size_t n) {
  uint8_t s = 0;
  for (size_t i = 0; i < n; ++i) s = static_cast<uint8_t>(s + p[i]);
  return s;
}

const uint8_t* find_mp_floating(uint64_t from, uint64_t to) {
  for (uint64_t a = from; a + 16 <= to; a += 16) {
    const auto* p = reinterpret_cast<const uint8_t*>(a);
    if (p[0] == '_' && p[1] == 'M' && p[2] == 'P' && p[3] == '_' && sum(p, 16) == 0) return p;
  }
  return nullptr;
}

// Returns the number of enabled processors in the MP configuration table.
uint32_t count_mp_cpus(uint32_t* apic_ids) {
  const uint8_t* fp = find_mp_floating(0x9fc00, 0xa0000);
  if (!fp) fp = find_mp_floating(0xf0000, 0x100000);
  check(fp != nullptr, "mp_floating_pointer_found", "no _MP_ signature");
  if (!fp) return 0;
  uint32_t table_addr;
  memcpy(&table_addr, fp + 4, 4);
  const auto* t = reinterpret_cast<const uint8_t*>(static_cast<uint64_t>(table_addr));
  uint16_t length, entries;
  memcpy(&length, t + 4, 2);
  memcpy(&entries, t + 34, 2);
  bool sig = t[0] == 'P' && t[1] == 'C' && t[2] == 'M' && t[3] == 'P';
  check(sig && sum(t, length) == 0, "mp_config_table_valid", "bad PCMP signature or checksum");
  uint32_t cpus = 0;
  const uint8_t* e = t + 44;
  for (uint16_t i = 0; i < entries && e < t + length; ++i) {
    if (e[0] == 0) {
      if ((e[3] & 1) && cpus < kMaxCpus) apic_ids[cpus++] = e[1];
      e += 20;
    } else {
      e += 8;
    }
  }
  return cpus;
}

uint32_t my_apic_id() {
  uint32_t r[4];
  cpuid(1, 0, r);
  return r[1] >> 24;
}

}  // namespace

void ap_run(uint32_t ap_index) {
  uint32_t apic = my_apic_id();
  if (apic < kMaxCpus) g_apic_seen[apic] = 1;
  Line().str("KT INFO ap ").dec(ap_index).str(" apic ").dec(apic).str(" in long mode").end();
  __atomic_fetch_add(&g_arrived, 1u, __ATOMIC_SEQ_CST);
  for (;;) asm volatile("cli; hlt");
}

void run(const StartInfo*) {
  begin("smp");
  uint32_t apic_ids[kMaxCpus];
  uint32_t cpus = count_mp_cpus(apic_ids);
  Line().str("KT INFO mp table lists ").dec(cpus).str(" cpus").end();
  check(cpus >= 2, "mp_table_lists_two_or_more_cpus", "fewer than 2 CPUs");
  g_apic_seen[my_apic_id() % kMaxCpus] = 1;

  memcpy(reinterpret_cast<void*>(uint64_t{kTrampolineAddr}), kt_trampoline_start,
         static_cast<size_t>(kt_trampoline_end - kt_trampoline_start));
  mmio_write32(kLapic + kLapicSvr, 0x1ff);  // software-enable the LAPIC
  mmio_write32(kLapic + kLapicIcrHigh, 0);
  mmio_write32(kLapic + kLapicIcrLow, 0x000c4500);  // INIT to all but self
  mmio_write32(kLapic + kLapicIcrLow, 0x000c4600 | (kTrampolineAddr >> 12));  // SIPI
  mmio_write32(kLapic + kLapicIcrLow, 0x000c4600 | (kTrampolineAddr >> 12));  // SIPI again, per the MP spec

  // Bounded wait: ~20 G TSC cycles is several seconds on any host clock.
  uint64_t deadline = rdtsc() + 20'000'000'000ull;
  while (__atomic_load_n(&g_arrived, __ATOMIC_SEQ_CST) + 1 < cpus && rdtsc() < deadline) pause();
  uint32_t arrived = __atomic_load_n(&g_arrived, __ATOMIC_SEQ_CST);
  Line().str("KT INFO ").dec(arrived).str(" aps arrived").end();
  check(cpus >= 2 && arrived + 1 == cpus, "all_aps_reported", "an AP did not start");
  bool all_ids = true;
  for (uint32_t i = 0; i < cpus; ++i) all_ids = all_ids && apic_ids[i] < kMaxCpus && g_apic_seen[apic_ids[i]];
  check(all_ids, "every_mp_apic_id_ran", "an MP-table APIC id never ran");
}

}  // namespace kt
