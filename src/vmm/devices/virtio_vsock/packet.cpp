#include "vmm/devices/virtio_vsock/packet.hpp"

#include <fmt/format.h>

#include <cstring>

namespace kindling::vmm {
Result<VsockPacket> parse_vsock_tx(const GuestMemory& mem, const DescriptorChain& chain) {
  if (!chain.writable.empty()) return make_error("vsock TX chain has device-writable buffers");
  if (chain.readable_bytes < sizeof(VsockHeader)) return make_error("vsock TX chain shorter than a packet header");
  VsockPacket p;
  // Copied once: the guest cannot change the header after we checked it.
  auto* out = reinterpret_cast<uint8_t*>(&p.hdr);
  size_t got = 0;
  for (const GuestBuffer& b : chain.readable) {
    size_t n = std::min<size_t>(b.len, sizeof(VsockHeader) - got);
    KINDLING_TRY(r, mem.read(b.addr, std::span<uint8_t>(out + got, n)));
    (void)r;
    got += n;
    if (got == sizeof(VsockHeader)) break;
  }
  if (p.hdr.len > kVsockMaxPayload) return make_error(fmt::format("vsock packet of {} bytes is over the limit", uint32_t{p.hdr.len}));
  if (p.hdr.len > chain.readable_bytes - sizeof(VsockHeader)) {
    return make_error(fmt::format("vsock packet claims {} bytes but carries {}", uint32_t{p.hdr.len}, chain.readable_bytes - sizeof(VsockHeader)));
  }
  p.payload = buffer_window(chain.readable, sizeof(VsockHeader), p.hdr.len);
  return p;
}

std::vector<GuestBuffer> vsock_rx_payload_space(const DescriptorChain& chain, uint32_t max_bytes) {
  return buffer_window(chain.writable, sizeof(VsockHeader), max_bytes);
}

Status write_vsock_header(const GuestMemory& mem, const DescriptorChain& chain, const VsockHeader& hdr) {
  if (chain.writable_bytes < sizeof(VsockHeader)) return make_error("vsock RX buffer shorter than a packet header");
  const auto* in = reinterpret_cast<const uint8_t*>(&hdr);
  size_t done = 0;
  for (const GuestBuffer& b : chain.writable) {
    size_t n = std::min<size_t>(b.len, sizeof(VsockHeader) - done);
    KINDLING_TRY(w, mem.write(b.addr, std::span<const uint8_t>(in + done, n)));
    (void)w;
    done += n;
    if (done == sizeof(VsockHeader)) break;
  }
  return ok_status();
}

}  // namespace kindling::vmm
