// block_bench: a workload for bench/vmm/run_device_bench.py, not a test.
// On the first block device it writes the whole disk sequentially, flushes,
// reads it all back (requests of kLargeChunk), then does kSmallOps 4 KiB
// reads at scattered offsets, kSmallOps GET_ID requests (no file I/O) and
// kSmallOps bare MMIO register reads (one VM exit each), and a loop of plain
// arithmetic (no exit) that shows how fast guest code itself runs. One request in flight at a time, completion by
// polling the used ring: the figures are per-request round trips through
// the device, as a queue-depth-1 workload sees them.
// Each phase is bracketed by serial lines ("KT INFO bench <phase> start" /
// "... done <bytes>") that the host timestamps: the guest has no clock it
// could trust under a nested hypervisor.
#include "lib/kt.hpp"
#include "lib/virtio.hpp"

namespace kt {
namespace {

using namespace virtio;

constexpr uint32_t kTIn = 0, kTOut = 1, kTFlush = 4, kTGetId = 8;
constexpr uint64_t kFFlush = 1ull << 9;
constexpr uint32_t kLargeChunk = 256 * 1024;
constexpr uint32_t kSmallChunk = 4096;
constexpr uint32_t kSmallOps = 2000;
constexpr uint32_t kComputeLoops = 100000;

struct Header {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

QueueMemory g_qmem;
Queue g_q;
uint8_t g_data[kLargeChunk] __attribute__((aligned(4096)));

bool request(uint32_t type, uint64_t sector, void* data, uint32_t len, bool device_writes) {
  Header h{type, 0, sector};
  uint8_t status = 0xff;
  Buf bufs[3] = {{&h, sizeof(h), false}, {data, len, device_writes}, {&status, 1, true}};
  Buf no_data[2] = {{&h, sizeof(h), false}, {&status, 1, true}};
  int64_t n = len ? transfer(g_q, bufs, 3) : transfer(g_q, no_data, 2);
  return n >= 0 && status == 0;
}

void phase(const char* name, const char* what, uint64_t bytes) {
  Line l;
  l.str("KT INFO bench ").str(name).str(" ").str(what);
  if (bytes) l.str(" ").dec(bytes);
  l.end();
}

}  // namespace

void run(const StartInfo* si) {
  begin("block_bench");
  uint64_t base = find(si, kDeviceBlock);
  uint64_t features = 0;
  bool up = base && init(base, kFEventIdx | kFFlush, &features) && setup_queue(base, 0, g_q, g_qmem, 16);
  check(up, "bench_disk_up", "no block device, or setup refused");
  if (!up) return;
  driver_ok(base);
  const uint64_t capacity = uint64_t{mmio_read32(base + kRegConfig)} | uint64_t{mmio_read32(base + kRegConfig + 4)} << 32;
  const uint64_t bytes = capacity * 512 / kLargeChunk * kLargeChunk;
  Line().str("KT INFO bench disk ").dec(bytes).str(" bytes").end();
  for (uint32_t i = 0; i < kLargeChunk; ++i) g_data[i] = static_cast<uint8_t>(i * 7 + 1);

  bool ok = true;
  phase("write", "start", 0);
  for (uint64_t off = 0; off < bytes && ok; off += kLargeChunk) ok = request(kTOut, off / 512, g_data, kLargeChunk, false);
  phase("write", "done", bytes);
  check(ok, "bench_writes_ok", "a write failed");

  phase("flush", "start", 0);
  ok = request(kTFlush, 0, nullptr, 0, false);
  phase("flush", "done", 0);
  check(ok, "bench_flush_ok", "flush failed");

  phase("read", "start", 0);
  for (uint64_t off = 0; off < bytes && ok; off += kLargeChunk) ok = request(kTIn, off / 512, g_data, kLargeChunk, true);
  phase("read", "done", bytes);
  check(ok && g_data[1] == 8, "bench_reads_ok", "a read failed or returned other bytes");

  // Scattered 4 KiB reads: a multiplicative step over the disk's 4 KiB blocks.
  const uint64_t blocks = bytes / kSmallChunk;
  phase("read4k", "start", 0);
  for (uint32_t i = 0; i < kSmallOps && ok; ++i) {
    const uint64_t block = (uint64_t{i} * 2654435761u) % blocks;
    ok = request(kTIn, block * (kSmallChunk / 512), g_data, kSmallChunk, true);
  }
  phase("read4k", "done", uint64_t{kSmallOps} * kSmallChunk);
  check(ok, "bench_small_reads_ok", "a 4 KiB read failed");

  // GET_ID moves 20 bytes and touches no file: the cost of one request's
  // round trip through the queue, the device thread and back.
  phase("getid", "start", 0);
  for (uint32_t i = 0; i < kSmallOps && ok; ++i) ok = request(kTGetId, 0, g_data, 20, true);
  phase("getid", "done", 0);
  check(ok, "bench_get_id_ok", "GET_ID failed");

  // Reads of the MagicValue register: each one a bare exit to the VMM's
  // vCPU thread and back, the hypervisor's share of every figure above.
  uint32_t magic = 0;
  phase("mmio", "start", 0);
  for (uint32_t i = 0; i < kSmallOps; ++i) magic |= mmio_read32(base + kRegMagic);
  phase("mmio", "done", 0);
  check(magic == 0x74726976, "bench_mmio_reads_ok", "MagicValue changed");

  // Plain guest code with no exit at all: kComputeLoops iterations of a
  // multiply-add chain (about 4 instructions each). Under a hypervisor that
  // emulates guest kernel code this is what the guest's own driver code in
  // every figure above pays per instruction.
  uint64_t x = 1;
  phase("compute", "start", 0);
  for (uint32_t i = 0; i < kComputeLoops; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    asm volatile("" : "+r"(x));
  }
  phase("compute", "done", 0);
  check(x != 0, "bench_compute_ran", "");
}

}  // namespace kt
