// libFuzzer target for the split-virtqueue walker, fed with guest memory
// images: the input is a 64 KiB guest RAM image (descriptor table, rings and
// buffers, all guest-controlled) preceded by a small header choosing the
// queue's size, ring addresses and negotiated features. Popping, completing
// and interrupt decisions must give chains whose every buffer lies in guest
// memory, or an error — never a crash, hang or out-of-bounds access.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "vmm/devices/virtio_mmio/virtqueue.hpp"

namespace {

using namespace kindling::vmm;

constexpr uint64_t kRamSize = 64 * 1024;

struct Header {
  uint16_t size;
  uint16_t desc_page;   // ring addresses: page * 16 keeps them mostly in range
  uint16_t avail_page;
  uint16_t used_page;
  uint8_t features;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static GuestMemory* mem = new GuestMemory(GuestMemory::create(kRamSize).value());
  if (size < sizeof(Header)) return 0;
  Header h;
  std::memcpy(&h, data, sizeof(h));
  data += sizeof(h);
  size -= sizeof(h);
  auto ram = mem->slice(0, kRamSize).value();
  std::memset(ram.data(), 0, ram.size());
  std::memcpy(ram.data(), data, std::min<size_t>(size, kRamSize));

  VirtqueueConfig cfg;
  cfg.max_size = 256;
  cfg.size = static_cast<uint16_t>(1u << (h.size % 10));  // 1..512, sometimes above max
  cfg.ready = true;
  cfg.desc_table = uint64_t{h.desc_page} * 16;
  cfg.avail_ring = uint64_t{h.avail_page} * 2;
  cfg.used_ring = uint64_t{h.used_page} * 4;
  uint64_t features = (h.features & 1 ? kVirtioFIndirectDesc : 0) | (h.features & 2 ? kVirtioFEventIdx : 0);
  auto q = Virtqueue::create(*mem, cfg, features);
  if (!q) return 0;
  for (int i = 0; i < 64; ++i) {
    auto chain = q->pop();
    if (!chain || !*chain) break;
    const DescriptorChain& c = **chain;
    // The walker's promise: every buffer is inside guest memory and the chain is bounded.
    if (c.readable.size() + c.writable.size() > kVirtqMaxSize) __builtin_trap();
    for (const auto* list : {&c.readable, &c.writable}) {
      for (const GuestBuffer& b : *list) {
        auto s = mem->slice(b.addr, b.len);
        if (!s) __builtin_trap();
        volatile uint8_t touch = s->data()[b.len - 1];  // ASan checks the host pointer too
        (void)touch;
      }
    }
    if (!q->add_used(c.head, static_cast<uint32_t>(c.writable_bytes))) __builtin_trap();
    (void)q->needs_interrupt();
  }
  return 0;
}
