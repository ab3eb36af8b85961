// virtio-net chains as the guest hands them over (virtio 1.2, section 5.1.6),
// with no offloads and no mergeable RX buffers: a 12-byte virtio_net_hdr
// then an Ethernet frame. Parsing stands alone, with no tap or VM, so it can
// be fuzzed with guest memory images.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.hpp"
#include "vmm/devices/virtio_mmio/virtqueue.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace kindling::vmm {

inline constexpr uint32_t kVirtioNetHdrSize = 12;  // virtio 1.x header without mergeable buffers
inline constexpr uint32_t kMaxFrame = 65535;
inline constexpr uint32_t kMinRxFrame = 14;  // room for at least an Ethernet header
// More buffers than this in one chain fails the device: a bound on the iovec
// array readv/writev get (below IOV_MAX, which would refuse it anyway) that
// an indirect table could otherwise push to 32768.
inline constexpr size_t kNetMaxSegments = 256;

struct NetTxFrame {
  std::vector<GuestBuffer> frame;  // the Ethernet frame, header stripped; all inside guest memory
  uint64_t len = 0;
  // Well-formed but no tap would take it (empty, or over kMaxFrame): the
  // device drops it like a NIC would and returns the buffer.
  bool drop = false;
};

// An Error when the chain is not a TX packet: device-writable buffers, less
// than a header, or more than kNetMaxSegments buffers.
Result<NetTxFrame> parse_net_tx(const DescriptorChain& chain);

struct NetRxSpace {
  std::vector<GuestBuffer> frame;  // where a received frame goes: the writable buffers after the header
  uint64_t capacity = 0;           // bytes of `frame`, at most kMaxFrame
};

// An Error when the chain cannot take a frame: readable buffers, room for
// less than a header and kMinRxFrame, or more than kNetMaxSegments buffers.
Result<NetRxSpace> parse_net_rx(const DescriptorChain& chain);

// Writes the zeroed RX header (num_buffers = 1) at the start of the chain's writable buffers.
Status write_net_rx_header(const GuestMemory& mem, const DescriptorChain& chain);

}  // namespace kindling::vmm
