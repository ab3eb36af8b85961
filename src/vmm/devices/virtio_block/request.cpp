#include "vmm/devices/virtio_block/request.hpp"

#include <cstring>

namespace kindling::vmm {
namespace {

// Drops the first `skip` bytes of a buffer list.
std::vector<GuestBuffer> skip_bytes(const std::vector<GuestBuffer>& in, uint64_t skip) {
  std::vector<GuestBuffer> out;
  for (const GuestBuffer& b : in) {
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    out.push_back({b.addr + skip, static_cast<uint32_t>(b.len - skip)});
    skip = 0;
  }
  return out;
}

}  // namespace

Result<BlockRequest> parse_block_request(const GuestMemory& mem, const DescriptorChain& chain) {
  if (chain.readable_bytes < 16) return make_error("block request without a 16-byte header");
  if (chain.writable_bytes < 1) return make_error("block request without a status byte");
  // The header may be split over descriptors; copy it once, so the guest
  // cannot change it between our checks and our use.
  uint8_t header[16];
  size_t got = 0;
  for (const GuestBuffer& b : chain.readable) {
    size_t n = std::min<size_t>(b.len, sizeof(header) - got);
    KINDLING_TRY(read, mem.read(b.addr, std::span<uint8_t>(header + got, n)));
    (void)read;
    got += n;
    if (got == sizeof(header)) break;
  }
  BlockRequest r;
  std::memcpy(&r.type, header, 4);
  std::memcpy(&r.sector, header + 8, 8);

  // The status byte is the last writable byte.
  std::vector<GuestBuffer> writable = chain.writable;
  GuestBuffer& last = writable.back();
  r.status_addr = last.addr + last.len - 1;
  if (--last.len == 0) writable.pop_back();

  if (r.type == kBlkTOut) {
    r.data = skip_bytes(chain.readable, 16);
    r.data_len = chain.readable_bytes - 16;
  } else {
    r.data = std::move(writable);
    r.data_len = chain.writable_bytes - 1;
  }
  return r;
}

uint8_t check_block_request(const BlockRequest& r, uint64_t capacity_sectors, bool read_only) {
  switch (r.type) {
    case kBlkTIn:
    case kBlkTOut: {
      if (r.type == kBlkTOut && read_only) return kBlkSIoErr;
      if (r.data.size() > kBlkMaxSegments) return kBlkSIoErr;
      if (r.data_len % kSectorSize != 0) return kBlkSIoErr;
      // Overflow-safe: sector + sectors <= capacity.
      const uint64_t sectors = r.data_len / kSectorSize;
      if (r.sector > capacity_sectors || sectors > capacity_sectors - r.sector) return kBlkSIoErr;
      return kBlkSOk;
    }
    case kBlkTFlush: return kBlkSOk;
    case kBlkTGetId: return r.data_len == 0 ? kBlkSIoErr : kBlkSOk;
    default: return kBlkSUnsupp;
  }
}

}  // namespace kindling::vmm
