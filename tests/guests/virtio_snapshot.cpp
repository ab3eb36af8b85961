// virtio_snapshot: the snapshot test guest for virtio devices. Brings up the
// entropy device and the first block device once, writes a marker sector
// (sector 1) once, then loops forever; each round reads 32 bytes of entropy,
// writes a round-stamped sector and reads it back, reads the marker sector
// back, and prints
//   "KT VSNAP <round> rng <ok> blk <ok> marker <ok>"
// It never resets or re-initialises a device after the first bring-up, so
// a restore that lost the transport or queue state (a device that forgot it
// was activated, ring positions back at 0) shows up as 0s: a transfer that
// times out or a used entry where none was expected.
#include "lib/kt.hpp"
#include "lib/virtio.hpp"

namespace kt {
namespace {

using namespace virtio;

constexpr uint32_t kTIn = 0, kTOut = 1;
constexpr uint8_t kSOk = 0;

struct Header {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

QueueMemory g_rng_mem, g_blk_mem;
Queue g_rng, g_blk;
uint8_t g_sector[512] __attribute__((aligned(512)));
uint8_t g_entropy[32];

bool blk_request(uint32_t type, uint64_t sector) {
  Header h{type, 0, sector};
  uint8_t status = 0xff;
  Buf bufs[3] = {{&h, sizeof(h), false}, {g_sector, sizeof(g_sector), type == kTIn}, {&status, 1, true}};
  return transfer(g_blk, bufs, 3) >= 1 && status == kSOk;
}

void fill(uint64_t stamp) {
  for (uint32_t i = 0; i < sizeof(g_sector); i += 8) {
    uint64_t w = (stamp * 0x9e3779b97f4a7c15ull) ^ i;
    memcpy(g_sector + i, &w, 8);
  }
}

bool matches(uint64_t stamp) {
  for (uint32_t i = 0; i < sizeof(g_sector); i += 8) {
    uint64_t w = (stamp * 0x9e3779b97f4a7c15ull) ^ i, got;
    memcpy(&got, g_sector + i, 8);
    if (got != w) return false;
  }
  return true;
}

constexpr uint64_t kMarkerStamp = 0x4b696e646c696e67ull;

}  // namespace

void run(const StartInfo* si) {
  begin("virtio_snapshot");
  const uint64_t rng = find(si, kDeviceEntropy);
  const uint64_t blk = find(si, kDeviceBlock);
  check(rng != 0 && blk != 0, "devices_on_cmdline", "no entropy or block device announced");
  if (!rng || !blk) return;
  check(init(rng, kFEventIdx) && setup_queue(rng, 0, g_rng, g_rng_mem, 16) && (driver_ok(rng), true), "rng_driver_ok", "rng setup refused");
  check(init(blk, kFEventIdx) && setup_queue(blk, 0, g_blk, g_blk_mem, 16) && (driver_ok(blk), true), "blk_driver_ok", "block setup refused");
  fill(kMarkerStamp);
  check(blk_request(kTOut, 1), "marker_written", "writing sector 1 failed");
  for (uint64_t round = 1;; ++round) {
    memset(g_entropy, 0, sizeof(g_entropy));
    Buf b{g_entropy, sizeof(g_entropy), true};
    uint32_t nonzero = 0;
    const bool rng_ok = transfer(g_rng, &b, 1) == sizeof(g_entropy);
    for (uint8_t x : g_entropy) nonzero += x != 0;
    const uint64_t sector = 8 + round % 64;
    fill(round);
    bool blk_ok = blk_request(kTOut, sector);
    memset(g_sector, 0, sizeof(g_sector));
    blk_ok = blk_ok && blk_request(kTIn, sector) && matches(round);
    memset(g_sector, 0, sizeof(g_sector));
    const bool marker_ok = blk_request(kTIn, 1) && matches(kMarkerStamp);
    Line()
        .str("KT VSNAP ").dec(round)
        .str(" rng ").dec(rng_ok && nonzero > 8 ? 1 : 0)
        .str(" blk ").dec(blk_ok ? 1 : 0)
        .str(" marker ").dec(marker_ok ? 1 : 0)
        .end();
    // ~20 ms at a few GHz between rounds: the log stays short.
    const uint64_t until = rdtsc() + 50'000'000;
    while (rdtsc() < until) pause();
  }
}

}  // namespace kt
