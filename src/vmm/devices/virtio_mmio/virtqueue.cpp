#include "vmm/devices/virtio_mmio/virtqueue.hpp"

#include <fmt/format.h>

#include <atomic>

namespace kindling::vmm {

Result<DescriptorChain> walk_descriptor_chain(const GuestMemory& mem, uint64_t desc_table, uint16_t table_size,
                                              uint16_t head, bool indirect_allowed) {
  if (head >= table_size) return make_error(fmt::format("chain head {} is outside a table of {}", head, table_size));
  DescriptorChain chain;
  chain.head = head;
  uint64_t table = desc_table;
  uint32_t entries = table_size;
  uint32_t index = head;
  // Each table may be visited at most once per entry: a longer chain must
  // revisit a descriptor, i.e. it loops.
  uint32_t budget = entries;
  bool in_indirect = false;
  for (;;) {
    if (budget == 0) return make_error("descriptor chain is longer than its table (a loop?)");
    --budget;
    auto desc = mem.read_obj<VirtqDesc>(table + 16ull * index);
    if (!desc) return make_error(fmt::format("descriptor {} is outside guest memory", index));
    if (desc->flags & kVirtqDescFIndirect) {
      if (!indirect_allowed) return make_error("indirect descriptor without VIRTIO_F_INDIRECT_DESC");
      if (in_indirect) return make_error("nested indirect descriptor table");
      if (desc->flags & kVirtqDescFNext) return make_error("indirect descriptor with NEXT set");
      if (desc->len == 0 || desc->len % 16 != 0 || desc->len / 16 > kVirtqMaxSize) {
        return make_error(fmt::format("indirect table length {} is not a multiple of 16 within bounds", desc->len));
      }
      if (!mem.contains(desc->addr, desc->len)) return make_error("indirect table is outside guest memory");
      table = desc->addr;
      entries = desc->len / 16;
      index = 0;
      budget = entries;
      in_indirect = true;
      continue;
    }
    if (desc->len > 0) {
      if (!mem.contains(desc->addr, desc->len)) {
        return make_error(fmt::format("buffer {:#x}+{:#x} is outside guest memory", desc->addr, desc->len));
      }
      if (desc->flags & kVirtqDescFWrite) {
        chain.writable.push_back({desc->addr, desc->len});
        chain.writable_bytes += desc->len;
      } else {
        if (!chain.writable.empty()) return make_error("driver-readable buffer after a device-writable one");
        chain.readable.push_back({desc->addr, desc->len});
        chain.readable_bytes += desc->len;
      }
    }
    if (!(desc->flags & kVirtqDescFNext)) break;
    index = desc->next;
    if (index >= entries) return make_error(fmt::format("next descriptor {} is outside a table of {}", index, entries));
  }
  return chain;
}

Result<Virtqueue> Virtqueue::create(const GuestMemory& mem, const VirtqueueConfig& cfg, uint64_t acked_features) {
  if (!cfg.ready) return make_error("queue is not ready");
  const uint16_t n = cfg.size;
  if (n == 0 || n > kVirtqMaxSize || (n & (n - 1)) != 0) return make_error(fmt::format("bad queue size {}", n));
  if (cfg.desc_table % 16 != 0 || cfg.avail_ring % 2 != 0 || cfg.used_ring % 4 != 0) {
    return make_error("queue rings are not aligned as the spec requires");
  }
  // Rings include the event-index words; sizes cannot overflow (n <= 32768).
  if (!mem.contains(cfg.desc_table, 16ull * n) || !mem.contains(cfg.avail_ring, 6 + 2ull * n) ||
      !mem.contains(cfg.used_ring, 6 + 8ull * n)) {
    return make_error("queue rings are outside guest memory");
  }
  Virtqueue q(mem);
  q.size_ = n;
  q.desc_ = cfg.desc_table;
  q.avail_ = cfg.avail_ring;
  q.used_ = cfg.used_ring;
  q.event_idx_ = acked_features & kVirtioFEventIdx;
  q.indirect_ = acked_features & kVirtioFIndirectDesc;
  return q;
}

// Ring words are shared with running vCPUs: atomic, naturally aligned
// (create() checked the alignment), and always inside the checked rings.
uint16_t Virtqueue::load16(uint64_t addr) const {
  auto s = mem_->slice(addr, 2);
  if (!s) return 0;
  return __atomic_load_n(reinterpret_cast<uint16_t*>(s->data()), __ATOMIC_ACQUIRE);
}

void Virtqueue::store16(uint64_t addr, uint16_t v) const {
  auto s = mem_->slice(addr, 2);
  if (s) __atomic_store_n(reinterpret_cast<uint16_t*>(s->data()), v, __ATOMIC_RELEASE);
}

Result<std::optional<DescriptorChain>> Virtqueue::pop() {
  uint16_t avail_idx = load16(avail_ + 2);
  if (avail_idx == next_avail_ && event_idx_) {
    // Ask for a notification at the next buffer, then look again: the driver
    // may have added one before it could see our avail_event.
    store16(used_ + 4 + 8ull * size_, next_avail_);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    avail_idx = load16(avail_ + 2);
  }
  const uint16_t pending = static_cast<uint16_t>(avail_idx - next_avail_);
  if (pending == 0) return std::optional<DescriptorChain>();
  if (pending > size_) {
    return make_error(fmt::format("driver published {} buffers on a queue of {}", pending, size_));
  }
  const uint16_t head = load16(avail_ + 4 + 2ull * (next_avail_ % size_));
  KINDLING_TRY(chain, walk_descriptor_chain(*mem_, desc_, size_, head, indirect_));
  ++next_avail_;
  return std::optional<DescriptorChain>(std::move(chain));
}

Status Virtqueue::add_used(uint16_t head, uint32_t len) {
  if (head >= size_) return make_error("used head outside the queue");
  struct {
    uint32_t id;
    uint32_t len;
  } elem{head, len};
  KINDLING_TRY(written, mem_->write_obj(used_ + 4 + 8ull * (next_used_ % size_), elem));
  (void)written;
  ++next_used_;
  std::atomic_thread_fence(std::memory_order_release);
  store16(used_ + 2, next_used_);
  return ok_status();
}

bool Virtqueue::needs_interrupt() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint16_t old = signalled_used_;
  const uint16_t now = next_used_;
  if (now == old) return false;
  signalled_used_ = now;
  if (!event_idx_) return (load16(avail_) & kVirtqAvailFNoInterrupt) == 0;
  const uint16_t used_event = load16(avail_ + 4 + 2ull * size_);
  // vring_need_event(): did `now` step past the index the driver asked for?
  return static_cast<uint16_t>(now - used_event - 1) < static_cast<uint16_t>(now - old);
}

}  // namespace kindling::vmm
