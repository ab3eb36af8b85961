// virtio_block: drives two disks announced on the command line through its
// own driver. On the read-write disk ("scratch") it writes a pattern over
// the first 3 MiB in 64 KiB requests, flushes, reads everything back and
// prints both checksums (the host test recomputes them from the file); on
// the read-only disk ("golden") a write must come back IOERR. It also checks
// GET_ID, the capacity, an out-of-range read and an unsupported request type.
#include "lib/kt.hpp"
#include "lib/virtio.hpp"

namespace kt {
namespace {

using namespace virtio;

constexpr uint32_t kTIn = 0, kTOut = 1, kTFlush = 4, kTGetId = 8;
constexpr uint8_t kSOk = 0, kSIoErr = 1, kSUnsupp = 2;
constexpr uint64_t kFRo = 1ull << 5, kFFlush = 1ull << 9;
constexpr uint32_t kChunk = 64 * 1024;
constexpr uint64_t kPatternBytes = 3ull << 20;

struct Header {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

QueueMemory g_qmem[3];  // discovery, golden, scratch: never two live queues on one ring
uint8_t g_data[kChunk] __attribute__((aligned(4096)));

struct Disk {
  uint64_t base = 0;
  uint64_t features = 0;
  Queue q;
};

uint8_t request(Disk& d, uint32_t type, uint64_t sector, void* data, uint32_t len, bool device_writes, int64_t* used = nullptr) {
  Header h{type, 0, sector};
  uint8_t status = 0xff;
  Buf bufs[3] = {{&h, sizeof(h), false}, {data, len, device_writes}, {&status, 1, true}};
  Buf no_data[2] = {{&h, sizeof(h), false}, {&status, 1, true}};
  int64_t n = len ? transfer(d.q, bufs, 3) : transfer(d.q, no_data, 2);
  if (used) *used = n;
  return n < 0 ? 0xfe : status;
}

uint64_t pattern_word(uint64_t offset) { return (offset * 0x9e3779b97f4a7c15ull) ^ 0x4b696e646c696e67ull; }

// FNV-1a over 64-bit words: cheap enough for an emulated guest.
uint64_t mix(uint64_t h, uint64_t w) { return (h ^ w) * 0x100000001b3ull; }

bool bring_up(Disk& d, uint64_t base, QueueMemory& mem) {
  d.base = base;
  return init(base, kFEventIdx | kFIndirect | kFFlush | kFRo, &d.features) &&
         setup_queue(base, 0, d.q, mem, 16) && (driver_ok(base), true);
}

bool get_id(Disk& d, char* id) {
  memset(id, 0, 21);
  return request(d, kTGetId, 0, id, 20, true) == kSOk;
}

bool same(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

}  // namespace

void run(const StartInfo* si) {
  begin("virtio_block");
  Disk scratch, golden;
  char id[21];
  for (int i = 0; i < 2; ++i) {
    uint64_t base = find(si, kDeviceBlock, nullptr, i);
    Disk d;
    if (!base || !bring_up(d, base, g_qmem[0]) || !get_id(d, id)) continue;
    reset(base);
    Line().str("KT INFO block at ").hex(base).str(" id ").str(id).end();
    if (same(id, "scratch")) scratch = d;
    if (same(id, "golden")) golden = d;
  }
  check(scratch.base != 0, "scratch_disk_found_by_id", "no block device answered GET_ID with scratch");
  check(golden.base != 0, "golden_disk_found_by_id", "no block device answered GET_ID with golden");
  if (!scratch.base || !golden.base) return;

  check(bring_up(golden, golden.base, g_qmem[1]), "golden_driver_ok", "");
  check((golden.features & kFRo) != 0, "golden_offers_read_only", "VIRTIO_BLK_F_RO missing");
  uint64_t golden_capacity = uint64_t{mmio_read32(golden.base + kRegConfig)} | uint64_t{mmio_read32(golden.base + kRegConfig + 4)} << 32;
  memset(g_data, 0xee, 512);
  check(request(golden, kTOut, 0, g_data, 512, false) == kSIoErr, "write_to_read_only_is_ioerr", "write accepted");
  check(request(golden, kTIn, 0, g_data, 512, true) == kSOk && g_data[0] == 'G' && g_data[1] == 'O',
        "read_only_disk_readable", "cannot read the golden disk");
  check(request(golden, kTIn, golden_capacity, g_data, 512, true) == kSIoErr, "read_past_end_is_ioerr", "accepted");
  check(request(golden, kTIn, ~0ull - 1, g_data, 1024, true) == kSIoErr, "wrapping_sector_is_ioerr", "accepted");
  check(request(golden, 99, 0, g_data, 512, true) == kSUnsupp, "unknown_type_is_unsupp", "not UNSUPP");

  check(bring_up(scratch, scratch.base, g_qmem[2]), "scratch_driver_ok", "");
  check((scratch.features & kFFlush) != 0 && (scratch.features & kFRo) == 0, "scratch_features", "FLUSH missing or RO set");
  uint64_t capacity = uint64_t{mmio_read32(scratch.base + kRegConfig)} | uint64_t{mmio_read32(scratch.base + kRegConfig + 4)} << 32;
  Line().str("KT INFO scratch capacity ").dec(capacity).str(" sectors").end();
  check(capacity * 512 >= kPatternBytes, "scratch_capacity", "disk smaller than the pattern");

  uint64_t wrote = 0xcbf29ce484222325ull;
  bool writes_ok = true;
  for (uint64_t off = 0; off < kPatternBytes; off += kChunk) {
    uint64_t* w = reinterpret_cast<uint64_t*>(g_data);
    for (uint32_t i = 0; i < kChunk / 8; ++i) {
      w[i] = pattern_word(off + 8 * i);
      wrote = mix(wrote, w[i]);
    }
    writes_ok = writes_ok && request(scratch, kTOut, off / 512, g_data, kChunk, false) == kSOk;
  }
  check(writes_ok, "pattern_written", "a write failed");
  int64_t used = -1;
  check(request(scratch, kTFlush, 0, nullptr, 0, false, &used) == kSOk && used == 1, "flush_ok", "flush failed");

  uint64_t read = 0xcbf29ce484222325ull;
  bool reads_ok = true, pattern_ok = true;
  for (uint64_t off = 0; off < kPatternBytes; off += kChunk) {
    memset(g_data, 0, kChunk);
    reads_ok = reads_ok && request(scratch, kTIn, off / 512, g_data, kChunk, true, &used) == kSOk && used == kChunk + 1;
    const uint64_t* w = reinterpret_cast<const uint64_t*>(g_data);
    for (uint32_t i = 0; i < kChunk / 8; ++i) {
      read = mix(read, w[i]);
      pattern_ok = pattern_ok && w[i] == pattern_word(off + 8 * i);
    }
  }
  check(reads_ok, "pattern_read_back", "a read failed");
  check(pattern_ok && read == wrote, "read_back_matches_written", "data differs");
  Line().str("KT INFO block wrote ").dec(kPatternBytes).str(" bytes checksum ").hex(wrote).end();
  Line().str("KT INFO block read ").dec(kPatternBytes).str(" bytes checksum ").hex(read).end();
}

}  // namespace kt
