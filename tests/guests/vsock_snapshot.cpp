// vsock_snapshot: the snapshot test guest for virtio-vsock. Brings the
// device up once (8 RX buffers, TX, and 2 buffers on the event queue), then
// serves forever:
//  - port 1234 echoes every host connection byte for byte;
//  - a TRANSPORT_RESET event (id 0 on the event queue: what a restored
//    device sends) drops every connection, as Linux's driver does, prints
//    "KT VSOCK reset <n> dropped <connections>", and opens a connection to
//    host port 5000 that sends 16 bytes and expects them back, then prints
//    "KT VSOCK outbound <ok>".
// It prints "KT VSOCK conns <n>" whenever its connection count changes.
#include "lib/kt.hpp"
#include "lib/virtio.hpp"

namespace kt {
namespace {

using namespace virtio;

struct [[gnu::packed]] Hdr {
  uint64_t src_cid, dst_cid;
  uint32_t src_port, dst_port, len;
  uint16_t type, op;
  uint32_t flags, buf_alloc, fwd_cnt;
};
enum : uint16_t { kRequest = 1, kResponse = 2, kRst = 3, kShutdown = 4, kRw = 5, kCreditUpdate = 6, kCreditRequest = 7 };
constexpr uint32_t kEchoPort = 1234, kHostPort = 5000, kRxBufs = 8, kChunk = 2048, kEventBufs = 2;
constexpr uint32_t kBufAlloc = 1 << 20, kOutboundBytes = 16;

struct Conn {
  bool used = false, outbound = false;
  uint32_t local = 0, peer = 0, rx_bytes = 0, fwd_cnt = 0;
};

QueueMemory g_rx_mem, g_tx_mem, g_ev_mem;
Queue g_rx, g_tx, g_ev;
uint8_t g_rx_bufs[kRxBufs][sizeof(Hdr) + kChunk];
uint8_t g_tx_payload[kChunk];
uint32_t g_events[kEventBufs];
Conn g_conns[8];
uint64_t g_cid = 0;
uint32_t g_resets = 0;
uint8_t g_outbound_got[kOutboundBytes];

void send(const Conn& c, uint16_t op, uint32_t flags, const uint8_t* data, uint32_t len) {
  static Hdr h;
  h = Hdr{g_cid, 2, c.local, c.peer, len, 1, op, flags, kBufAlloc, c.fwd_cnt};
  Buf bufs[2] = {{&h, sizeof(h), false}, {data, len, false}};
  transfer(g_tx, bufs, len ? 2 : 1);
}

void send_rst(uint32_t local, uint32_t peer) {
  Conn tmp;
  tmp.local = local;
  tmp.peer = peer;
  send(tmp, kRst, 0, nullptr, 0);
}

uint32_t live() {
  uint32_t n = 0;
  for (const Conn& c : g_conns) n += c.used;
  return n;
}

Conn* find_conn(uint32_t local, uint32_t peer) {
  for (Conn& c : g_conns) {
    if (c.used && c.local == local && c.peer == peer) return &c;
  }
  return nullptr;
}

Conn* new_conn() {
  for (Conn& c : g_conns) {
    if (!c.used) {
      c = Conn{};
      c.used = true;
      return &c;
    }
  }
  return nullptr;
}

uint8_t outbound_byte(uint32_t i) { return static_cast<uint8_t>(0xa0 + i); }

void handle(const Hdr& h, const uint8_t* payload) {
  Conn* c = find_conn(h.dst_port, h.src_port);
  switch (h.op) {
    case kRequest:
      if (h.dst_port != kEchoPort || c || (c = new_conn()) == nullptr) return send_rst(h.dst_port, h.src_port);
      c->local = h.dst_port;
      c->peer = h.src_port;
      return send(*c, kResponse, 0, nullptr, 0);
    case kResponse:
      if (!c || !c->outbound) return send_rst(h.dst_port, h.src_port);
      for (uint32_t i = 0; i < kOutboundBytes; ++i) g_tx_payload[i] = outbound_byte(i);
      return send(*c, kRw, 0, g_tx_payload, kOutboundBytes);
    case kRw:
      if (!c) return send_rst(h.dst_port, h.src_port);
      c->fwd_cnt += h.len;
      if (!c->outbound) {
        memcpy(g_tx_payload, payload, h.len);
        return send(*c, kRw, 0, g_tx_payload, h.len);
      }
      for (uint32_t i = 0; i < h.len && c->rx_bytes + i < kOutboundBytes; ++i) g_outbound_got[c->rx_bytes + i] = payload[i];
      c->rx_bytes += h.len;
      if (c->rx_bytes >= kOutboundBytes) {
        bool ok = c->rx_bytes == kOutboundBytes;
        for (uint32_t i = 0; i < kOutboundBytes; ++i) ok = ok && g_outbound_got[i] == outbound_byte(i);
        Line().str("KT VSOCK outbound ").dec(ok ? 1 : 0).end();
        send(*c, kShutdown, 3, nullptr, 0);
      }
      return;
    case kShutdown:
    case kRst:
      if (c) {
        if (h.op == kShutdown) send(*c, kRst, 0, nullptr, 0);
        c->used = false;
      }
      return;
    case kCreditRequest:
      if (c) send(*c, kCreditUpdate, 0, nullptr, 0);
      return;
    default: return;
  }
}

// What Linux's virtio_transport_event_work does for TRANSPORT_RESET: every
// connection is gone; the CID is read again. Then a fresh outbound one.
void on_transport_reset() {
  ++g_resets;
  const uint32_t dropped = live();
  for (Conn& c : g_conns) c.used = false;
  g_cid = uint64_t{mmio_read32(g_ev.base + kRegConfig)} | uint64_t{mmio_read32(g_ev.base + kRegConfig + 4)} << 32;
  Line().str("KT VSOCK reset ").dec(g_resets).str(" dropped ").dec(dropped).str(" cid ").dec(g_cid).end();
  Conn* c = new_conn();
  if (!c) return;
  c->outbound = true;
  c->local = 3000 + g_resets;
  c->peer = kHostPort;
  send(*c, kRequest, 0, nullptr, 0);
}

}  // namespace

void run(const StartInfo* si) {
  begin("vsock_snapshot");
  const uint64_t base = find(si, kDeviceVsock);
  check(base != 0, "vsock_found_on_cmdline", "no virtio_mmio.device entry for a vsock device");
  if (!base) return;
  const bool up = init(base, kFEventIdx) && setup_queue(base, 0, g_rx, g_rx_mem, kRxBufs) &&
                  setup_queue(base, 1, g_tx, g_tx_mem, 16) && setup_queue(base, 2, g_ev, g_ev_mem, 4);
  check(up, "vsock_driver_ok", "feature negotiation or queue setup refused");
  if (!up) return;
  driver_ok(base);
  g_cid = uint64_t{mmio_read32(base + kRegConfig)} | uint64_t{mmio_read32(base + kRegConfig + 4)} << 32;
  for (uint16_t i = 0; i < kRxBufs; ++i) {
    Buf b{g_rx_bufs[i], sizeof(g_rx_bufs[i]), true};
    submit(g_rx, &b, 1, i);
  }
  notify(g_rx);
  for (uint16_t i = 0; i < kEventBufs; ++i) {
    g_events[i] = 0xffffffff;  // so only an event the device wrote reads as id 0
    Buf b{&g_events[i], sizeof(g_events[i]), true};
    submit(g_ev, &b, 1, i);
  }
  notify(g_ev);
  info("vsock ready");
  uint32_t shown = 0;
  for (;;) {
    uint32_t id = 0, len = 0;
    if (wait_used(g_ev, &id, &len, 1)) {
      const bool reset = id < kEventBufs && len >= 4 && g_events[id] == 0;
      if (id < kEventBufs) {
        g_events[id] = 0xffffffff;
        publish_head(g_ev, static_cast<uint16_t>(id));
        notify(g_ev);
      }
      if (reset) on_transport_reset();
    }
    if (wait_used(g_rx, &id, &len, 1)) {
      if (id < kRxBufs && len >= sizeof(Hdr)) {
        Hdr h;
        memcpy(&h, g_rx_bufs[id], sizeof(h));
        if (h.len <= len - sizeof(Hdr) && h.len <= kChunk) handle(h, g_rx_bufs[id] + sizeof(Hdr));
      }
      publish_head(g_rx, static_cast<uint16_t>(id < kRxBufs ? id : 0));
      notify(g_rx);
    }
    if (live() != shown) {
      shown = live();
      Line().str("KT VSOCK conns ").dec(shown).end();
    }
    pause();
  }
}

}  // namespace kt
