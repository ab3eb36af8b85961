// CRC-32 (IEEE 802.3, as zlib's crc32) over the snapshot file's header and
// body. Written here rather than linking zlib: kindling-vmm is a static
// binary with a short dependency list, and the table fits in a page.
#pragma once

#include <cstdint>
#include <span>

namespace kindling::vmm {

uint32_t crc32(std::span<const uint8_t> bytes, uint32_t crc = 0);

}  // namespace kindling::vmm
