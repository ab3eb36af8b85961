// libFuzzer target for the virtio-vsock TX packet parser, fed with guest
// memory images: descriptor table at 0 (16 entries), walked as the device
// walks it; a parsed packet's payload must be exactly `len` bytes, all in
// guest memory.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "vmm/devices/virtio_vsock/packet.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kindling::vmm;
  constexpr uint64_t kRam = 64 * 1024;
  static GuestMemory* mem = new GuestMemory(GuestMemory::create(kRam).value());
  if (size < 2) return 0;
  auto ram = mem->slice(0, kRam).value();
  std::memset(ram.data(), 0, ram.size());
  std::memcpy(ram.data(), data + 2, std::min<size_t>(size - 2, kRam));
  auto chain = walk_descriptor_chain(*mem, 0, 16, data[0] % 16, data[1] & 1);
  if (!chain) return 0;
  auto pkt = parse_vsock_tx(*mem, *chain);
  if (pkt) {
    uint64_t total = 0;
    for (const GuestBuffer& b : pkt->payload) {
      if (!mem->contains(b.addr, b.len)) __builtin_trap();
      total += b.len;
    }
    if (total != pkt->hdr.len || total > kVsockMaxPayload) __builtin_trap();
  }
  if (!chain->writable.empty()) {
    auto space = vsock_rx_payload_space(*chain, kVsockMaxPayload);
    for (const GuestBuffer& b : space) {
      if (!mem->contains(b.addr, b.len)) __builtin_trap();
    }
  }
  return 0;
}
