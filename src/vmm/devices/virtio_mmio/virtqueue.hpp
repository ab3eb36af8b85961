// Split virtqueues (virtio 1.2, section 2.7): the device side of the rings a
// guest driver shares with us. Every byte read here is guest-controlled, so
// the walker bounds each chain by the queue size (a loop cannot outlast it),
// checks every descriptor's address and length against guest memory before
// a device may touch it, and reports any broken rule as an Error: the device
// then marks itself DEVICE_NEEDS_RESET instead of guessing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/result.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace kindling::vmm {

inline constexpr uint64_t kVirtioFIndirectDesc = 1ull << 28;
inline constexpr uint64_t kVirtioFEventIdx = 1ull << 29;
inline constexpr uint16_t kVirtqDescFNext = 1;
inline constexpr uint16_t kVirtqDescFWrite = 2;
inline constexpr uint16_t kVirtqDescFIndirect = 4;
inline constexpr uint16_t kVirtqAvailFNoInterrupt = 1;
inline constexpr uint16_t kVirtqMaxSize = 32768;  // the spec's largest split queue

// Guest-physical addresses and size of one split virtqueue, as the driver set them.
struct VirtqueueConfig {
  uint16_t max_size = 0;
  uint16_t size = 0;
  bool ready = false;
  uint64_t desc_table = 0;
  uint64_t avail_ring = 0;
  uint64_t used_ring = 0;
};

struct VirtqDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(VirtqDesc) == 16);

// One guest buffer, already checked to lie inside guest memory.
struct GuestBuffer {
  uint64_t addr;
  uint32_t len;
};

// `in` minus its first `skip` bytes, at most `max` bytes long: the payload
// part of a chain whose header the device has already read.
inline std::vector<GuestBuffer> buffer_window(const std::vector<GuestBuffer>& in, uint64_t skip, uint64_t max) {
  std::vector<GuestBuffer> out;
  for (const GuestBuffer& b : in) {
    if (max == 0) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const uint64_t n = std::min<uint64_t>(b.len - skip, max);
    out.push_back({b.addr + skip, static_cast<uint32_t>(n)});
    max -= n;
    skip = 0;
  }
  return out;
}

// A chain as the device sees it: driver-written buffers first, then
// device-writable ones (the spec's order; a chain that mixes them is refused).
struct DescriptorChain {
  uint16_t head = 0;
  std::vector<GuestBuffer> readable;
  std::vector<GuestBuffer> writable;
  uint64_t readable_bytes = 0;
  uint64_t writable_bytes = 0;
};

// Walks the chain starting at `head` of a descriptor table with `table_size`
// entries. Indirect tables are followed when `indirect_allowed`, one level
// deep, with the same checks. Stands alone so it can be fuzzed.
Result<DescriptorChain> walk_descriptor_chain(const GuestMemory& mem, uint64_t desc_table, uint16_t table_size,
                                              uint16_t head, bool indirect_allowed);

class Virtqueue {
 public:
  // Checks size, alignment and that all three rings lie in guest memory.
  static Result<Virtqueue> create(const GuestMemory& mem, const VirtqueueConfig& cfg, uint64_t acked_features);

  // The next available chain; nullopt when the driver has offered nothing
  // new; an Error when the driver broke the protocol.
  Result<std::optional<DescriptorChain>> pop();
  // Puts the last popped chain back (the device could not use it yet).
  void undo_pop() { --next_avail_; }
  // Returns a chain to the driver with `len` bytes written into it.
  Status add_used(uint16_t head, uint32_t len);
  // Whether the driver asked to be interrupted for what was used since the
  // last time this returned true (event index or the NO_INTERRUPT flag).
  bool needs_interrupt();

  uint16_t size() const { return size_; }
  uint16_t next_avail() const { return next_avail_; }
  uint16_t next_used() const { return next_used_; }
  uint16_t signalled_used() const { return signalled_used_; }
  // Snapshot restore: the ring positions the device had when it was saved.
  void set_positions(uint16_t next_avail, uint16_t next_used, uint16_t signalled_used) {
    next_avail_ = next_avail;
    next_used_ = next_used;
    signalled_used_ = signalled_used;
  }

 private:
  Virtqueue(const GuestMemory& mem) : mem_(&mem) {}
  uint16_t load16(uint64_t addr) const;
  void store16(uint64_t addr, uint16_t v) const;

  const GuestMemory* mem_;
  uint16_t size_ = 0;
  uint64_t desc_ = 0, avail_ = 0, used_ = 0;
  bool event_idx_ = false;
  bool indirect_ = false;
  uint16_t next_avail_ = 0;
  uint16_t next_used_ = 0;
  uint16_t signalled_used_ = 0;
};

}  // namespace kindling::vmm
