// Guest RAM: host mappings registered with KVM, and the only way the VMM
// reads or writes guest memory. Every access names a guest-physical range and
// is checked against the regions before a host pointer is formed, so a
// guest-supplied address or length can never reach outside the mapping.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "common/result.hpp"

namespace kindling::vmm {

struct GuestRegion {
  uint64_t guest_addr;
  uint64_t size;
  uint8_t* host;
};

// Where the bytes come from. Anonymous memory is the cold-boot default; a
// file mapping is what the snapshot issue restores from (MAP_PRIVATE keeps the
// file's clean pages shared between VMs restored from one image).
struct MemoryBacking {
  enum class Kind { kAnonymous, kFilePrivate, kFileShared };
  Kind kind = Kind::kAnonymous;
  int fd = -1;  // borrowed for the mmap call only
  bool huge_pages = false;
};

class GuestMemory {
 public:
  // Lays out `size` bytes of RAM around the 32-bit MMIO hole.
  static Result<GuestMemory> create(uint64_t size, const MemoryBacking& backing = {});

  GuestMemory(GuestMemory&& o) noexcept;
  GuestMemory& operator=(GuestMemory&& o) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  ~GuestMemory();

  const std::vector<GuestRegion>& regions() const { return regions_; }
  uint64_t size() const { return size_; }

  // The host view of [addr, addr+len) if it lies inside one region.
  Result<std::span<uint8_t>> slice(uint64_t addr, uint64_t len) const;
  bool contains(uint64_t addr, uint64_t len) const { return slice(addr, len).ok(); }

  Status write(uint64_t addr, std::span<const uint8_t> bytes) const;
  Status read(uint64_t addr, std::span<uint8_t> out) const;

  template <typename T>
  Status write_obj(uint64_t addr, const T& value) const {
    return write(addr, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
  }
  template <typename T>
  Result<T> read_obj(uint64_t addr) const {
    T value;
    auto s = read(addr, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&value), sizeof(T)));
    if (!s) return s.error();
    return value;
  }

 private:
  GuestMemory() = default;
  uint8_t* mapping_ = nullptr;
  uint64_t size_ = 0;
  std::vector<GuestRegion> regions_;
};

}  // namespace kindling::vmm
