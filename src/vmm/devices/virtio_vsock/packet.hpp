// virtio-vsock packets (virtio 1.2, section 5.10.6): a 44-byte header and a
// payload. The guest's TX chains are parsed here, standing alone so the
// parser can be fuzzed with guest memory images; RX packets are written into
// the guest's buffers by the helpers below.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.hpp"
#include "vmm/devices/virtio_mmio/virtqueue.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace kindling::vmm {

inline constexpr uint16_t kVsockTypeStream = 1;
enum VsockOp : uint16_t {
  kVsockOpRequest = 1, kVsockOpResponse = 2, kVsockOpRst = 3, kVsockOpShutdown = 4,
  kVsockOpRw = 5, kVsockOpCreditUpdate = 6, kVsockOpCreditRequest = 7,
};
inline constexpr uint32_t kVsockShutdownRcv = 1, kVsockShutdownSend = 2;
inline constexpr uint64_t kVsockHostCid = 2;
// Largest payload one packet may carry (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).
inline constexpr uint32_t kVsockMaxPayload = 64 * 1024;

struct [[gnu::packed]] VsockHeader {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
};
static_assert(sizeof(VsockHeader) == 44);

struct VsockPacket {
  VsockHeader hdr{};
  std::vector<GuestBuffer> payload;  // exactly hdr.len bytes, all inside guest memory
};

// An Error when the chain is not a packet (short header, writable buffers,
// a length beyond what the chain carries or kVsockMaxPayload).
Result<VsockPacket> parse_vsock_tx(const GuestMemory& mem, const DescriptorChain& chain);

// The payload space of an RX chain: its writable buffers after the header.
std::vector<GuestBuffer> vsock_rx_payload_space(const DescriptorChain& chain, uint32_t max_bytes);
// Writes a header at the start of an RX chain's writable buffers.
Status write_vsock_header(const GuestMemory& mem, const DescriptorChain& chain, const VsockHeader& hdr);

}  // namespace kindling::vmm
