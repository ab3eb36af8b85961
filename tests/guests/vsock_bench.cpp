// vsock_bench: a workload for bench/vmm/run_device_bench.py, not a test.
// Serves host connections (Firecracker's "CONNECT <port>") on:
//  - 1234 echo: every byte back, as it arrives (round-trip latency);
//  - 1235 sink: the first 8 bytes are a little-endian count N; after N more
//    bytes the guest answers one byte 'K' (host -> guest throughput);
//  - 1236 source: the first 8 bytes are a count N; the guest sends N bytes,
//    within the host's credit, then shuts down (guest -> host throughput);
//  - 1299: the guest finishes (KT END) and resets.
// One single-threaded polling driver, one TX packet in flight at a time,
// RX buffers of 64 KiB: what the device does per packet is what is timed.
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
constexpr uint32_t kEchoPort = 1234, kSinkPort = 1235, kSourcePort = 1236, kQuitPort = 1299;
constexpr uint32_t kChunk = 64 * 1024, kRxBufs = 16;
constexpr uint32_t kBufAlloc = 2 << 20;
constexpr uint32_t kCreditEvery = 256 * 1024;  // consumed bytes between CREDIT_UPDATEs

struct Conn {
  bool used = false;
  uint32_t local = 0, peer = 0;
  uint32_t fwd_cnt = 0, fwd_cnt_sent = 0;            // our receive side
  uint32_t peer_buf_alloc = 0, peer_fwd_cnt = 0, tx_cnt = 0;  // the host's credit for us
  uint8_t count_bytes[8] = {};
  uint32_t count_have = 0;  // bytes of the 8-byte count received (sink, source)
  uint64_t remaining = 0;   // sink: bytes still to receive; source: to send
  bool counting = false;    // sink or source with its count complete
};

QueueMemory g_rx_mem, g_tx_mem, g_ev_mem;
Queue g_rx, g_tx, g_ev;
uint8_t g_rx_bufs[kRxBufs][sizeof(Hdr) + kChunk];
uint8_t g_tx_payload[kChunk];
Conn g_conns[8];
uint64_t g_cid = 0;
bool g_quit = false;

void send(Conn& c, uint16_t op, uint32_t flags, const uint8_t* data, uint32_t len) {
  static Hdr h;
  h = Hdr{g_cid, 2, c.local, c.peer, len, 1, op, flags, kBufAlloc, c.fwd_cnt};
  c.fwd_cnt_sent = c.fwd_cnt;
  Buf bufs[2] = {{&h, sizeof(h), false}, {data, len, false}};
  transfer(g_tx, bufs, len ? 2 : 1);
  if (op == kRw) c.tx_cnt += len;
}

void send_rst(uint32_t local, uint32_t peer) {
  Conn tmp;
  tmp.local = local;
  tmp.peer = peer;
  send(tmp, kRst, 0, nullptr, 0);
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

// Takes the 8-byte count from the front of a sink or source stream; returns
// how many payload bytes it used.
uint32_t take_count(Conn& c, const uint8_t* p, uint32_t len) {
  uint32_t used = 0;
  while (c.count_have < 8 && used < len) c.count_bytes[c.count_have++] = p[used++];
  if (c.count_have == 8 && !c.counting) {
    memcpy(&c.remaining, c.count_bytes, 8);
    c.counting = true;
  }
  return used;
}

void on_data(Conn& c, const uint8_t* p, uint32_t len) {
  c.fwd_cnt += len;
  if (c.local == kEchoPort) {
    memcpy(g_tx_payload, p, len);
    send(c, kRw, 0, g_tx_payload, len);
    return;
  }
  const uint32_t used = take_count(c, p, len);
  if (c.local == kSinkPort && c.counting) {
    const uint64_t got = len - used;
    const bool was_waiting = c.remaining > 0;
    c.remaining = got >= c.remaining ? 0 : c.remaining - got;
    if (was_waiting && c.remaining == 0) {
      g_tx_payload[0] = 'K';
      send(c, kRw, 0, g_tx_payload, 1);
    }
  }
  if (c.fwd_cnt - c.fwd_cnt_sent >= kCreditEvery) send(c, kCreditUpdate, 0, nullptr, 0);
}

void handle(const Hdr& h, const uint8_t* payload) {
  Conn* c = find_conn(h.dst_port, h.src_port);
  if (c) {
    c->peer_buf_alloc = h.buf_alloc;
    c->peer_fwd_cnt = h.fwd_cnt;
  }
  switch (h.op) {
    case kRequest: {
      if (h.dst_port == kQuitPort) {
        g_quit = true;
        return send_rst(h.dst_port, h.src_port);
      }
      const bool known = h.dst_port == kEchoPort || h.dst_port == kSinkPort || h.dst_port == kSourcePort;
      if (!known || c || (c = new_conn()) == nullptr) return send_rst(h.dst_port, h.src_port);
      c->local = h.dst_port;
      c->peer = h.src_port;
      c->peer_buf_alloc = h.buf_alloc;
      c->peer_fwd_cnt = h.fwd_cnt;
      return send(*c, kResponse, 0, nullptr, 0);
    }
    case kRw:
      if (!c) return send_rst(h.dst_port, h.src_port);
      return on_data(*c, payload, h.len);
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

// Handles at most one RX packet; false when none was waiting.
bool poll_rx() {
  uint32_t id = 0, len = 0;
  if (!wait_used(g_rx, &id, &len, 1)) return false;
  if (id < kRxBufs && len >= sizeof(Hdr)) {
    Hdr h;
    memcpy(&h, g_rx_bufs[id], sizeof(h));
    if (h.len <= len - sizeof(Hdr)) handle(h, g_rx_bufs[id] + sizeof(Hdr));
  }
  publish_head(g_rx, static_cast<uint16_t>(id));
  notify(g_rx);
  return true;
}

// One chunk of a source stream, within the host's credit.
bool pump_source() {
  for (Conn& c : g_conns) {
    if (!c.used || c.local != kSourcePort || !c.counting || c.remaining == 0) continue;
    const uint32_t in_flight = c.tx_cnt - c.peer_fwd_cnt;
    if (c.peer_buf_alloc <= in_flight) continue;
    uint64_t n = c.peer_buf_alloc - in_flight;
    if (n > kChunk) n = kChunk;
    if (n > c.remaining) n = c.remaining;
    send(c, kRw, 0, g_tx_payload, static_cast<uint32_t>(n));
    c.remaining -= n;
    if (c.remaining == 0) send(c, kShutdown, 3, nullptr, 0);
    return true;
  }
  return false;
}

}  // namespace

void run(const StartInfo* si) {
  begin("vsock_bench");
  uint64_t base = find(si, kDeviceVsock);
  bool up = base && init(base, kFEventIdx) && setup_queue(base, 0, g_rx, g_rx_mem, kRxBufs) &&
            setup_queue(base, 1, g_tx, g_tx_mem, 16) && setup_queue(base, 2, g_ev, g_ev_mem, 4);
  check(up, "vsock_driver_ok", "no vsock device, or setup refused");
  if (!up) return;
  driver_ok(base);
  g_cid = uint64_t{mmio_read32(base + kRegConfig)} | uint64_t{mmio_read32(base + kRegConfig + 4)} << 32;
  for (uint16_t i = 0; i < kRxBufs; ++i) {
    Buf b{g_rx_bufs[i], sizeof(g_rx_bufs[i]), true};
    submit(g_rx, &b, 1, i);
  }
  notify(g_rx);
  for (uint32_t i = 0; i < kChunk; ++i) g_tx_payload[i] = static_cast<uint8_t>(i);
  info("vsock bench ready");
  while (!g_quit) {
    const bool rx = poll_rx();
    const bool tx = pump_source();
    if (!rx && !tx) pause();
  }
  check(true, "vsock_bench_quit", "");
}

}  // namespace kt
