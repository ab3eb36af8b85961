// counter: the snapshot test guest. Fills every 4 KiB page of RAM above
// 4 MiB with a word derived from the page number and a per-round salt, then
// loops forever: each round checks every page still holds the previous
// round's word, writes the new round's, and prints
//   "KT COUNT <round> salt <salt> bad <pages that did not match>".
// The salt is read from the TSC each round, so two VMs restored from one
// snapshot write different words from then on: if they shared written
// pages, each would see the other's words and count them bad. A restore that
// lost memory or vCPU state shows up as bad pages, or a count that starts
// over (a second "KT BEGIN").
// A key at the i8042 (SendCtrlAltDel) switches it to reading only: rounds
// go on checking every page but write none, so VMs restored from a snapshot
// taken then share their clean pages (PSS) instead of copying them.
#include "lib/kt.hpp"

namespace kt {
namespace {

constexpr uint64_t kBase = 4ull << 20;
constexpr uint64_t kPage = 4096;

uint64_t ram_end(const StartInfo* si) {
  uint64_t end = 0;
  const auto* map = reinterpret_cast<const MemmapEntry*>(si->memmap_paddr);
  for (uint32_t i = 0; i < si->memmap_entries; ++i) {
    // RAM below the 3 GiB MMIO hole only: the page tables map 4 GiB.
    if (map[i].type == 1 && map[i].addr <= kBase && map[i].addr + map[i].size > end) end = map[i].addr + map[i].size;
  }
  return end > (3ull << 30) ? (3ull << 30) : end;
}

// The word's place in its page moves with the page number, so a page
// restored at the wrong offset cannot pass by accident.
volatile uint64_t* word_of(uint64_t page) { return reinterpret_cast<volatile uint64_t*>(kBase + page * kPage + (page * 72) % kPage); }
uint64_t pattern(uint64_t page, uint64_t salt) { return (page * 0x9e3779b97f4a7c15ull) ^ salt; }

}  // namespace

void run(const StartInfo* si) {
  begin("counter");
  const uint64_t end = ram_end(si);
  check(end > kBase + kPage, "ram_above_4mib", "no RAM above 4 MiB");
  const uint64_t pages = (end - kBase) / kPage;
  uint64_t salt = rdtsc();
  for (uint64_t p = 0; p < pages; ++p) *word_of(p) = pattern(p, salt);
  Line().str("KT INFO filled ").dec(pages).str(" pages").end();
  bool read_only = false;
  for (uint64_t round = 1;; ++round) {
    if (!read_only && (inb(0x64) & 1)) {
      (void)inb(0x60);
      read_only = true;
      info("read-only from now on");
    }
    const uint64_t next = read_only ? salt : rdtsc() | 1;  // never 0: a zeroed page must not pass
    uint64_t bad = 0;
    for (uint64_t p = 0; p < pages; ++p) {
      volatile uint64_t* w = word_of(p);
      if (*w != pattern(p, salt)) ++bad;
      if (!read_only) *w = pattern(p, next);
    }
    salt = next;
    Line().str("KT COUNT ").dec(round).str(" salt ").hex(salt).str(" bad ").dec(bad).end();
  }
}

}  // namespace kt
