// libFuzzer target for the virtio-blk request parser, fed with guest memory
// images: a 64 KiB guest RAM image whose descriptor table (at 0, 16 entries)
// holds whatever the input says, walked like the device walks it, then
// parsed and checked. Every buffer of a parsed request must lie in guest
// memory, the status byte inside a writable buffer, and sector arithmetic
// must not wrap.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "vmm/devices/virtio_block/request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kindling::vmm;
  constexpr uint64_t kRam = 64 * 1024;
  static GuestMemory* mem = new GuestMemory(GuestMemory::create(kRam).value());
  if (size < 3) return 0;
  const uint16_t head = data[0] % 16;
  const bool indirect = data[1] & 1;
  const bool read_only = data[1] & 2;
  const uint64_t capacity = uint64_t{data[2]} << (data[1] >> 2);
  auto ram = mem->slice(0, kRam).value();
  std::memset(ram.data(), 0, ram.size());
  std::memcpy(ram.data(), data + 3, std::min<size_t>(size - 3, kRam));

  auto chain = walk_descriptor_chain(*mem, 0, 16, head, indirect);
  if (!chain) return 0;
  auto req = parse_block_request(*mem, *chain);
  if (!req) return 0;
  if (!mem->contains(req->status_addr, 1)) __builtin_trap();
  uint64_t total = 0;
  for (const GuestBuffer& b : req->data) {
    if (!mem->contains(b.addr, b.len)) __builtin_trap();
    total += b.len;
  }
  if (total != req->data_len) __builtin_trap();
  uint8_t status = check_block_request(*req, capacity, read_only);
  if (status == kBlkSOk && (req->type == kBlkTIn || req->type == kBlkTOut)) {
    if (req->type == kBlkTOut && read_only) __builtin_trap();
    if (req->sector > capacity || req->data_len / kSectorSize > capacity - req->sector) __builtin_trap();
  }
  return 0;
}
