// libFuzzer target for the virtio-net frame parser, fed with guest memory
// images: descriptor table at 0 (16 entries), walked as the device walks it,
// then parsed as a TX frame and as RX space. Every buffer handed to
// readv/writev must lie in guest memory, add up to the length the parser
// reports, stay within kNetMaxSegments and one frame's size; the RX header
// must fit whenever RX space was accepted.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "vmm/devices/virtio_net/frame.hpp"

namespace {

using namespace kindling::vmm;

uint64_t checked_total(const GuestMemory& mem, const std::vector<GuestBuffer>& bufs) {
  if (bufs.size() > kNetMaxSegments) __builtin_trap();
  uint64_t total = 0;
  for (const GuestBuffer& b : bufs) {
    if (b.len == 0 || !mem.contains(b.addr, b.len)) __builtin_trap();
    total += b.len;
  }
  return total;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr uint64_t kRam = 64 * 1024;
  static GuestMemory* mem = new GuestMemory(GuestMemory::create(kRam).value());
  if (size < 2) return 0;
  auto ram = mem->slice(0, kRam).value();
  std::memset(ram.data(), 0, ram.size());
  std::memcpy(ram.data(), data + 2, std::min<size_t>(size - 2, kRam));
  auto chain = walk_descriptor_chain(*mem, 0, 16, data[0] % 16, data[1] & 1);
  if (!chain) return 0;

  if (auto tx = parse_net_tx(*chain)) {
    if (tx->drop) {
      if (!tx->frame.empty() || (tx->len != 0 && tx->len <= kMaxFrame)) __builtin_trap();
    } else if (checked_total(*mem, tx->frame) != tx->len || tx->len > kMaxFrame) {
      __builtin_trap();
    }
  }
  if (auto rx = parse_net_rx(*chain)) {
    if (rx->capacity < kMinRxFrame || rx->capacity > kMaxFrame) __builtin_trap();
    if (checked_total(*mem, rx->frame) != rx->capacity) __builtin_trap();
    if (!write_net_rx_header(*mem, *chain)) __builtin_trap();
  }
  return 0;
}
