// net_snapshot: the snapshot test guest for virtio-net. Brings the device up
// once (MAC, 8 RX buffers, one TX queue) and then loops forever; each round
// it takes in whatever frames arrived (counting those of EtherType 0x88b6,
// which the host test sends), sends one broadcast frame of EtherType 0x88b5
// carrying "KSNAP" and the round number, and prints
//   "KT NSNAP <round> tx <ok> txused <tx used idx> rx <frames counted>"
// One frame per round, so the TX used index equals the round: a restore that
// lost the device's ring positions shows as an index that restarts, or a
// transfer that times out (tx 0). It never resets the device.
#include "lib/kt.hpp"
#include "lib/virtio.hpp"

namespace kt {
namespace {

using namespace virtio;

constexpr uint64_t kFMac = 1ull << 5;
constexpr uint32_t kHdr = 12, kRxBufs = 8, kBufSize = 2048, kFrameLen = 60;
constexpr uint16_t kTypeFromGuest = 0x88b5, kTypeToGuest = 0x88b6;

QueueMemory g_rx_mem, g_tx_mem;
Queue g_rx, g_tx;
uint8_t g_rx_bufs[kRxBufs][kBufSize];
uint8_t g_tx_buf[kBufSize];
uint8_t g_mac[6];
uint64_t g_rx_frames = 0;

// Takes every used RX buffer, counts the host's frames, gives the buffer back.
void drain_rx() {
  uint32_t id = 0, len = 0;
  bool any = false;
  while (wait_used(g_rx, &id, &len, 1)) {
    if (id < kRxBufs && len >= kHdr + 14 && len <= kBufSize) {
      const uint8_t* f = g_rx_bufs[id] + kHdr;
      if ((f[12] << 8 | f[13]) == kTypeToGuest) ++g_rx_frames;
    }
    publish_head(g_rx, static_cast<uint16_t>(id < kRxBufs ? id : 0));  // descriptor `id` still describes buffer `id`
    any = true;
  }
  if (any) notify(g_rx);
}

}  // namespace

void run(const StartInfo* si) {
  begin("net_snapshot");
  const uint64_t base = find(si, kDeviceNet);
  check(base != 0, "net_found_on_cmdline", "no virtio_mmio.device entry for a network device");
  if (!base) return;
  uint64_t features = 0;
  const bool up = init(base, kFEventIdx | kFMac, &features) && setup_queue(base, 0, g_rx, g_rx_mem, kRxBufs) &&
                  setup_queue(base, 1, g_tx, g_tx_mem, 16);
  check(up && (features & kFMac), "net_driver_ok_with_mac", "setup refused or no MAC offered");
  if (!up) return;
  const uint32_t lo = mmio_read32(base + kRegConfig), hi = mmio_read32(base + kRegConfig + 4);
  for (int i = 0; i < 4; ++i) g_mac[i] = static_cast<uint8_t>(lo >> (8 * i));
  g_mac[4] = static_cast<uint8_t>(hi);
  g_mac[5] = static_cast<uint8_t>(hi >> 8);
  driver_ok(base);
  for (uint16_t i = 0; i < kRxBufs; ++i) {
    Buf b{g_rx_bufs[i], kBufSize, true};
    submit(g_rx, &b, 1, i);
  }
  notify(g_rx);
  info("net ready");
  for (uint64_t round = 1;; ++round) {
    drain_rx();
    memset(g_tx_buf, 0, kHdr + kFrameLen);
    uint8_t* f = g_tx_buf + kHdr;
    memset(f, 0xff, 6);
    memcpy(f + 6, g_mac, 6);
    f[12] = kTypeFromGuest >> 8;
    f[13] = kTypeFromGuest & 0xff;
    memcpy(f + 14, "KSNAP", 5);
    memcpy(f + 19, &round, 8);
    Buf b{g_tx_buf, kHdr + kFrameLen, false};
    const bool tx_ok = transfer(g_tx, &b, 1) >= 0;
    const uint16_t tx_used = *reinterpret_cast<volatile uint16_t*>(g_tx.used + 2);
    Line().str("KT NSNAP ").dec(round).str(" tx ").dec(tx_ok ? 1 : 0).str(" txused ").dec(tx_used).str(" rx ").dec(g_rx_frames).end();
    // ~20 ms at a few GHz between rounds: the log stays short.
    const uint64_t until = rdtsc() + 50'000'000;
    while (rdtsc() < until) pause();
  }
}

}  // namespace kt
