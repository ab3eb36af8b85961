// virtio-blk requests (virtio 1.2, section 5.2.6) as the guest hands them
// over: a 16-byte header the device reads, data buffers, and a status byte
// the device writes last. Parsing and checking stand alone, with no file or
// VM, so they can be fuzzed with guest memory images.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.hpp"
#include "vmm/devices/virtio_mmio/virtqueue.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace kindling::vmm {

inline constexpr uint32_t kBlkTIn = 0, kBlkTOut = 1, kBlkTFlush = 4, kBlkTGetId = 8;
inline constexpr uint8_t kBlkSOk = 0, kBlkSIoErr = 1, kBlkSUnsupp = 2;
inline constexpr uint64_t kSectorSize = 512;
inline constexpr uint32_t kBlkIdBytes = 20;
// More data segments than this in one request is refused (IOERR): a bound
// on the iovec array the device builds, below the kernel's IOV_MAX.
inline constexpr size_t kBlkMaxSegments = 1024;

struct BlockRequest {
  uint32_t type = 0;
  uint64_t sector = 0;
  std::vector<GuestBuffer> data;  // readable for OUT, writable for IN / GET_ID
  uint64_t data_len = 0;
  uint64_t status_addr = 0;
};

// An Error when the chain cannot even carry an answer (no header, no status
// byte): the device then fails rather than guess where to write.
Result<BlockRequest> parse_block_request(const GuestMemory& mem, const DescriptorChain& chain);

// The status a well-formed request gets before any I/O: OK, IOERR (out of
// range, misaligned, write to a read-only disk, too many segments) or UNSUPP.
uint8_t check_block_request(const BlockRequest& r, uint64_t capacity_sectors, bool read_only);

}  // namespace kindling::vmm
