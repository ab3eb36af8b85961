#include "vmm/devices/virtio_net/frame.hpp"

#include <fmt/format.h>

namespace kindling::vmm {
Result<NetTxFrame> parse_net_tx(const DescriptorChain& chain) {
  if (!chain.writable.empty()) return make_error("virtio-net TX chain has device-writable buffers");
  if (chain.readable_bytes < kVirtioNetHdrSize) return make_error("virtio-net TX chain shorter than its header");
  if (chain.readable.size() > kNetMaxSegments) {
    return make_error(fmt::format("virtio-net TX chain of {} buffers (at most {})", chain.readable.size(), kNetMaxSegments));
  }
  NetTxFrame f;
  f.len = chain.readable_bytes - kVirtioNetHdrSize;
  f.drop = f.len == 0 || f.len > kMaxFrame;
  if (!f.drop) f.frame = buffer_window(chain.readable, kVirtioNetHdrSize, f.len);
  return f;
}

Result<NetRxSpace> parse_net_rx(const DescriptorChain& chain) {
  if (!chain.readable.empty()) return make_error("virtio-net RX chain has device-readable buffers");
  if (chain.writable_bytes < kVirtioNetHdrSize + kMinRxFrame) return make_error("virtio-net RX buffer too small for a frame");
  if (chain.writable.size() > kNetMaxSegments) {
    return make_error(fmt::format("virtio-net RX chain of {} buffers (at most {})", chain.writable.size(), kNetMaxSegments));
  }
  NetRxSpace s;
  s.capacity = std::min<uint64_t>(chain.writable_bytes - kVirtioNetHdrSize, kMaxFrame);
  s.frame = buffer_window(chain.writable, kVirtioNetHdrSize, s.capacity);
  return s;
}

Status write_net_rx_header(const GuestMemory& mem, const DescriptorChain& chain) {
  uint8_t hdr[kVirtioNetHdrSize] = {};
  hdr[10] = 1;  // num_buffers (le16)
  size_t done = 0;
  for (const GuestBuffer& b : chain.writable) {
    const size_t n = std::min<size_t>(b.len, sizeof(hdr) - done);
    KINDLING_TRY(w, mem.write(b.addr, std::span<const uint8_t>(hdr + done, n)));
    (void)w;
    done += n;
    if (done == sizeof(hdr)) return ok_status();
  }
  return make_error("virtio-net RX buffer shorter than its header");
}

}  // namespace kindling::vmm
