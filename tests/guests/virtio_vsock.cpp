// virtio_vsock: a tiny vsock stack over the guest's own virtio driver.
//  - listens on port 1234: every host connection (made through the VMM's
//    Unix socket with "CONNECT 1234") is echoed back, byte for byte;
//  - connects twice to host port 5000 (a listener at <uds_path>_5000), sends
//    32 KiB on each and checks the 32 KiB reply the host sends back.
// Connections run concurrently, interleaved on the same queues. The host
// test (vmm.VirtioVsock.*) drives the other ends and checks the streams.
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
constexpr uint32_t kEchoPort = 1234, kHostPort = 5000, kOutbound = 2, kEchoConns = 3;
constexpr uint32_t kOutboundBytes = 32 * 1024, kChunk = 4096, kRxBufs = 16;
constexpr uint32_t kBufAlloc = 1 << 20;

uint8_t pattern(uint32_t i, uint32_t seed) { return static_cast<uint8_t>(i * 131u + seed * 29u + (i >> 8)); }

struct Conn {
  bool used = false, established = false, closed = false, outbound = false;
  uint32_t local = 0, peer = 0, seed = 0;
  uint32_t rx_bytes = 0, fwd_cnt = 0;
  bool rx_ok = true;
};

QueueMemory g_rx_mem, g_tx_mem, g_ev_mem;
Queue g_rx, g_tx, g_ev;
uint8_t g_rx_bufs[kRxBufs][sizeof(Hdr) + kChunk];
uint8_t g_tx_payload[kChunk];
Conn g_conns[8];
uint64_t g_cid = 0;

void send(Conn& c, uint16_t op, uint32_t flags, const uint8_t* data, uint32_t len) {
  static Hdr h;
  h = Hdr{g_cid, 2, c.local, c.peer, len, 1, op, flags, kBufAlloc, c.fwd_cnt};
  Buf bufs[2] = {{&h, sizeof(h), false}, {data, len, false}};
  transfer(g_tx, bufs, len ? 2 : 1);
}

void send_raw(uint32_t local, uint32_t peer, uint16_t op) {
  Conn tmp;
  tmp.local = local;
  tmp.peer = peer;
  send(tmp, op, 0, nullptr, 0);
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

void send_outbound_data(Conn& c) {
  for (uint32_t off = 0; off < kOutboundBytes; off += kChunk) {
    for (uint32_t j = 0; j < kChunk; ++j) g_tx_payload[j] = pattern(off + j, c.seed);
    send(c, kRw, 0, g_tx_payload, kChunk);
  }
}

uint32_t g_echo_done = 0, g_outbound_done = 0, g_outbound_ok = 0, g_echo_seen = 0;

void handle(const Hdr& h, const uint8_t* payload) {
  Conn* c = find_conn(h.dst_port, h.src_port);
  switch (h.op) {
    case kRequest:
      if (h.dst_port != kEchoPort || c) return send_raw(h.dst_port, h.src_port, kRst);
      if ((c = new_conn()) == nullptr) return send_raw(h.dst_port, h.src_port, kRst);
      c->local = h.dst_port;
      c->peer = h.src_port;
      c->established = true;
      ++g_echo_seen;
      return send(*c, kResponse, 0, nullptr, 0);
    case kResponse:
      if (!c || !c->outbound || c->established) return;
      c->established = true;
      return send_outbound_data(*c);
    case kRw:
      if (!c) return send_raw(h.dst_port, h.src_port, kRst);
      for (uint32_t j = 0; j < h.len; ++j) {
        if (c->outbound && payload[j] != pattern(c->rx_bytes + j, 100 + c->seed)) c->rx_ok = false;
      }
      c->rx_bytes += h.len;
      c->fwd_cnt += h.len;
      if (!c->outbound) {
        memcpy(g_tx_payload, payload, h.len);  // echo
        return send(*c, kRw, 0, g_tx_payload, h.len);
      }
      if (c->rx_bytes == kOutboundBytes) {
        check(c->rx_ok, "outbound_reply_matches", "host reply differs from the expected pattern");
        g_outbound_ok += c->rx_ok;
        send(*c, kShutdown, 3, nullptr, 0);
      }
      return;
    case kShutdown:
      if (c && !c->closed && !c->outbound) {
        send(*c, kRst, 0, nullptr, 0);
        c->closed = true;
        c->used = false;
        ++g_echo_done;
      }
      return;
    case kRst:
      if (c && !c->closed) {
        c->closed = true;
        c->used = false;
        if (c->outbound) ++g_outbound_done;
        else ++g_echo_done;
      }
      return;
    case kCreditRequest:
      if (c) send(*c, kCreditUpdate, 0, nullptr, 0);
      return;
    default: return;
  }
}

}  // namespace

void run(const StartInfo* si) {
  begin("virtio_vsock");
  uint64_t base = find(si, kDeviceVsock);
  check(base != 0, "vsock_found_on_cmdline", "no virtio_mmio.device entry for a vsock device");
  if (!base) return;
  bool up = init(base, kFEventIdx) && setup_queue(base, 0, g_rx, g_rx_mem, kRxBufs) &&
            setup_queue(base, 1, g_tx, g_tx_mem, 16) && setup_queue(base, 2, g_ev, g_ev_mem, 4);
  check(up, "vsock_driver_ok", "feature negotiation or queue setup refused");
  if (!up) return;
  driver_ok(base);
  g_cid = uint64_t{mmio_read32(base + kRegConfig)} | uint64_t{mmio_read32(base + kRegConfig + 4)} << 32;
  Line().str("KT INFO vsock guest cid ").dec(g_cid).end();
  for (uint16_t i = 0; i < kRxBufs; ++i) {
    Buf b{g_rx_bufs[i], sizeof(g_rx_bufs[i]), true};
    submit(g_rx, &b, 1, i);
  }
  notify(g_rx);
  info("vsock ready");

  for (uint32_t i = 0; i < kOutbound; ++i) {
    Conn* c = new_conn();
    c->outbound = true;
    c->local = 2000 + i;
    c->peer = kHostPort;
    c->seed = i;
    send(*c, kRequest, 0, nullptr, 0);
  }

  // Serve until every stream is done; a bounded number of empty polls.
  uint64_t idle = 0;
  while ((g_echo_done < kEchoConns || g_outbound_done < kOutbound) && idle < 300'000'000ull) {
    uint32_t id = 0, len = 0;
    if (!wait_used(g_rx, &id, &len, 1)) {
      ++idle;
      continue;
    }
    idle = 0;
    if (id < kRxBufs && len >= sizeof(Hdr)) {
      Hdr h;
      memcpy(&h, g_rx_bufs[id], sizeof(h));
      if (h.len <= len - sizeof(Hdr)) handle(h, g_rx_bufs[id] + sizeof(Hdr));
    }
    publish_head(g_rx, static_cast<uint16_t>(id));
    notify(g_rx);
  }
  Line().str("KT INFO echo connections ").dec(g_echo_done).str(" of ").dec(g_echo_seen).str(", outbound ").dec(g_outbound_done).end();
  check(g_echo_done == kEchoConns, "three_host_connections_echoed", "not every host connection finished");
  check(g_outbound_done == kOutbound && g_outbound_ok == kOutbound, "two_guest_connections_done", "an outbound stream failed");
}

}  // namespace kt
