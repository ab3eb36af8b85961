// virtio_net: a tiny IPv4 host over the guest's own virtio-net driver. It
// takes 10.0.0.2 with the MAC the VMM offers, answers ARP for it, and echoes
// every UDP datagram sent to port 7 back to its sender. It ends after three
// echoes. The host test (vmm.VirtioNet.*) talks to it from a network
// namespace that owns the tap.
#include "lib/kt.hpp"
#include "lib/virtio.hpp"

namespace kt {
namespace {

using namespace virtio;

constexpr uint64_t kFMac = 1ull << 5;
constexpr uint32_t kHdr = 12, kRxBufs = 16, kBufSize = 2048, kEchoes = 3;
constexpr uint8_t kMyIp[4] = {10, 0, 0, 2};

QueueMemory g_rx_mem, g_tx_mem;
Queue g_rx, g_tx;
uint8_t g_rx_bufs[kRxBufs][kBufSize];
uint8_t g_tx_buf[kBufSize];
uint8_t g_mac[6];

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
bool is_my_ip(const uint8_t* p) { return p[0] == kMyIp[0] && p[1] == kMyIp[1] && p[2] == kMyIp[2] && p[3] == kMyIp[3]; }

void send_frame(uint32_t len) {
  Buf b{g_tx_buf, kHdr + len, false};
  transfer(g_tx, &b, 1);
}

// Returns true when the frame was a UDP datagram we echoed.
bool handle(const uint8_t* f, uint32_t len) {
  if (len < 14) return false;
  uint8_t* out = g_tx_buf + kHdr;
  memset(g_tx_buf, 0, kHdr);
  const uint16_t type = be16(f + 12);
  if (type == 0x0806 && len >= 42 && be16(f + 20) == 1 && is_my_ip(f + 38)) {  // ARP request for us
    memcpy(out, f + 6, 6);
    memcpy(out + 6, g_mac, 6);
    memcpy(out + 12, f + 12, 8);  // ethertype, htype, ptype, hlen, plen
    out[20] = 0;
    out[21] = 2;  // reply
    memcpy(out + 22, g_mac, 6);
    memcpy(out + 28, kMyIp, 4);
    memcpy(out + 32, f + 22, 10);  // sender's MAC and IP become the target
    send_frame(42);
    info("answered arp");
    return false;
  }
  if (type != 0x0800 || len < 14 + 20 + 8) return false;
  const uint8_t* ip = f + 14;
  const uint32_t ihl = (ip[0] & 15) * 4u;
  if ((ip[0] >> 4) != 4 || ihl < 20 || ip[9] != 17 || !is_my_ip(ip + 16) || len < 14 + ihl + 8) return false;
  const uint8_t* udp = ip + ihl;
  if (be16(udp + 2) != 7) return false;
  const uint32_t total = 14u + be16(ip + 2);
  if (total > len || total > kBufSize - kHdr) return false;
  memcpy(out, f, total);
  memcpy(out, f + 6, 6);  // Ethernet: back to the sender
  memcpy(out + 6, g_mac, 6);
  uint8_t* oip = out + 14;
  memcpy(oip + 12, ip + 16, 4);  // swapping addresses keeps the header checksum
  memcpy(oip + 16, ip + 12, 4);
  uint8_t* oudp = oip + ihl;
  memcpy(oudp, udp + 2, 2);
  memcpy(oudp + 2, udp, 2);
  oudp[6] = oudp[7] = 0;  // no UDP checksum (allowed for IPv4)
  send_frame(total);
  return true;
}

}  // namespace

void run(const StartInfo* si) {
  begin("virtio_net");
  uint64_t base = find(si, kDeviceNet);
  check(base != 0, "net_found_on_cmdline", "no virtio_mmio.device entry for a network device");
  if (!base) return;
  uint64_t features = 0;
  bool up = init(base, kFEventIdx | kFMac, &features) && setup_queue(base, 0, g_rx, g_rx_mem, kRxBufs) &&
            setup_queue(base, 1, g_tx, g_tx_mem, 16);
  check(up && (features & kFMac), "net_driver_ok_with_mac", "setup refused or no MAC offered");
  if (!up) return;
  uint32_t lo = mmio_read32(base + kRegConfig), hi = mmio_read32(base + kRegConfig + 4);
  for (int i = 0; i < 4; ++i) g_mac[i] = static_cast<uint8_t>(lo >> (8 * i));
  g_mac[4] = static_cast<uint8_t>(hi);
  g_mac[5] = static_cast<uint8_t>(hi >> 8);
  Line().str("KT INFO mac ").hex(g_mac[0]).str(":").hex(g_mac[5]).end();
  driver_ok(base);
  for (uint16_t i = 0; i < kRxBufs; ++i) {
    Buf b{g_rx_bufs[i], kBufSize, true};
    submit(g_rx, &b, 1, i);
  }
  notify(g_rx);
  info("net ready");

  uint32_t echoed = 0;
  uint64_t idle = 0;
  while (echoed < kEchoes && idle < 300'000'000ull) {
    uint32_t id = 0, len = 0;
    if (!wait_used(g_rx, &id, &len, 1)) {
      ++idle;
      continue;
    }
    idle = 0;
    if (id < kRxBufs && len > kHdr && len <= kBufSize && handle(g_rx_bufs[id] + kHdr, len - kHdr)) ++echoed;
    publish_head(g_rx, static_cast<uint16_t>(id));
    notify(g_rx);
  }
  Line().str("KT INFO net echoed ").dec(echoed).end();
  check(echoed == kEchoes, "udp_datagrams_echoed", "fewer echoes than expected");
}

}  // namespace kt
