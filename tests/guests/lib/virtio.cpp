#include "lib/virtio.hpp"

namespace kt::virtio {
namespace {

constexpr uint32_t kRegDeviceFeatures = 0x010, kRegDeviceFeaturesSel = 0x014, kRegDriverFeatures = 0x020,
                   kRegDriverFeaturesSel = 0x024, kRegQueueSel = 0x030, kRegQueueNumMax = 0x034,
                   kRegQueueNum = 0x038, kRegQueueReady = 0x044, kRegQueueNotify = 0x050,
                   kRegQueueDescLow = 0x080, kRegQueueDescHigh = 0x084, kRegQueueAvailLow = 0x090,
                   kRegQueueAvailHigh = 0x094, kRegQueueUsedLow = 0x0a0, kRegQueueUsedHigh = 0x0a4;

const char* find_str(const char* hay, const char* needle) {
  for (; *hay; ++hay) {
    const char* h = hay;
    const char* n = needle;
    while (*n && *h == *n) ++h, ++n;
    if (!*n) return hay;
  }
  return nullptr;
}

uint64_t parse_num(const char*& p, int base) {
  uint64_t v = 0;
  for (;; ++p) {
    char c = *p;
    int d = c >= '0' && c <= '9' ? c - '0' : base == 16 && c >= 'a' && c <= 'f' ? c - 'a' + 10
            : base == 16 && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return v;
    v = v * base + d;
  }
}

void wr(uint64_t base, uint32_t off, uint32_t v) { mmio_write32(base + off, v); }
uint32_t rd(uint64_t base, uint32_t off) { return mmio_read32(base + off); }

}  // namespace

uint64_t find(const StartInfo* si, uint32_t device_id, uint32_t* irq, int nth) {
  if (!si->cmdline_paddr) return 0;
  const char* p = reinterpret_cast<const char*>(si->cmdline_paddr);
  while ((p = find_str(p, "virtio_mmio.device=")) != nullptr) {
    p += 19;
    parse_num(p, 10);                 // size, e.g. "4"
    if (*p == 'K') ++p;
    if (*p++ != '@') continue;
    if (p[0] == '0' && p[1] == 'x') p += 2;
    uint64_t base = parse_num(p, 16);
    uint32_t line = 0;
    if (*p == ':') {
      ++p;
      line = static_cast<uint32_t>(parse_num(p, 10));
    }
    if (rd(base, kRegMagic) == 0x74726976 && rd(base, kRegVersion) == 2 && rd(base, kRegDeviceId) == device_id) {
      if (nth-- == 0) {
        if (irq) *irq = line;
        return base;
      }
    }
  }
  return 0;
}

void reset(uint64_t base) { wr(base, kRegStatus, 0); }
uint32_t status(uint64_t base) { return rd(base, kRegStatus); }

bool init(uint64_t base, uint64_t wanted, uint64_t* negotiated) {
  reset(base);
  wr(base, kRegStatus, kStatusAck);
  wr(base, kRegStatus, kStatusAck | kStatusDriver);
  wr(base, kRegDeviceFeaturesSel, 0);
  uint64_t offered = rd(base, kRegDeviceFeatures);
  wr(base, kRegDeviceFeaturesSel, 1);
  offered |= uint64_t{rd(base, kRegDeviceFeatures)} << 32;
  uint64_t accept = offered & (wanted | kFVersion1);
  wr(base, kRegDriverFeaturesSel, 0);
  wr(base, kRegDriverFeatures, static_cast<uint32_t>(accept));
  wr(base, kRegDriverFeaturesSel, 1);
  wr(base, kRegDriverFeatures, static_cast<uint32_t>(accept >> 32));
  wr(base, kRegStatus, kStatusAck | kStatusDriver | kStatusFeaturesOk);
  if (negotiated) *negotiated = accept;
  return (accept & kFVersion1) && (status(base) & kStatusFeaturesOk);
}

bool setup_queue(uint64_t base, uint16_t index, Queue& q, QueueMemory& mem, uint16_t size) {
  wr(base, kRegQueueSel, index);
  uint32_t max = rd(base, kRegQueueNumMax);
  if (max == 0 || size > max || size > 64) return false;
  memset(&mem, 0, sizeof(mem));
  q = Queue{};
  q.base = base;
  q.index = index;
  q.size = size;
  q.desc = reinterpret_cast<Desc*>(mem.bytes);
  q.avail = reinterpret_cast<volatile uint16_t*>(mem.bytes + 16 * size);
  q.used = mem.bytes + 4096;
  const uint64_t d = reinterpret_cast<uint64_t>(q.desc), a = reinterpret_cast<uint64_t>(q.avail),
                 u = reinterpret_cast<uint64_t>(q.used);
  wr(base, kRegQueueNum, size);
  wr(base, kRegQueueDescLow, static_cast<uint32_t>(d));
  wr(base, kRegQueueDescHigh, static_cast<uint32_t>(d >> 32));
  wr(base, kRegQueueAvailLow, static_cast<uint32_t>(a));
  wr(base, kRegQueueAvailHigh, static_cast<uint32_t>(a >> 32));
  wr(base, kRegQueueUsedLow, static_cast<uint32_t>(u));
  wr(base, kRegQueueUsedHigh, static_cast<uint32_t>(u >> 32));
  wr(base, kRegQueueReady, 1);
  return rd(base, kRegQueueReady) == 1;
}

void driver_ok(uint64_t base) { wr(base, kRegStatus, status(base) | kStatusDriverOk); }

void publish_head(Queue& q, uint16_t head) {
  q.avail[2 + q.avail_idx % q.size] = head;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  ++q.avail_idx;
  q.avail[1] = q.avail_idx;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void submit(Queue& q, const Buf* bufs, int n, uint16_t first_desc) {
  for (int i = 0; i < n; ++i) {
    Desc& d = q.desc[first_desc + i];
    d.addr = reinterpret_cast<uint64_t>(bufs[i].addr);
    d.len = bufs[i].len;
    d.flags = static_cast<uint16_t>((bufs[i].device_writes ? kDescWrite : 0) | (i + 1 < n ? kDescNext : 0));
    d.next = static_cast<uint16_t>(i + 1 < n ? first_desc + i + 1 : 0);
  }
  publish_head(q, first_desc);
}

void notify(Queue& q) { wr(q.base, kRegQueueNotify, q.index); }

bool wait_used(Queue& q, uint32_t* id, uint32_t* len, uint64_t spins) {
  volatile uint16_t* used_idx = reinterpret_cast<volatile uint16_t*>(q.used + 2);
  for (uint64_t i = 0; i < spins; ++i) {
    if (*used_idx != q.last_used) {
      __atomic_thread_fence(__ATOMIC_SEQ_CST);
      volatile uint32_t* elem = reinterpret_cast<volatile uint32_t*>(q.used + 4 + 8 * (q.last_used % q.size));
      if (id) *id = elem[0];
      if (len) *len = elem[1];
      ++q.last_used;
      return true;
    }
    pause();
  }
  return false;
}

int64_t transfer(Queue& q, const Buf* bufs, int n) {
  submit(q, bufs, n);
  notify(q);
  uint32_t len = 0;
  if (!wait_used(q, nullptr, &len)) return -1;
  return len;
}

}  // namespace kt::virtio
