#include "vmm/memory/guest_memory.hpp"

#include <fmt/format.h>
#include <sys/mman.h>

#include <cerrno>
#include <utility>

#include "vmm/arch/x86/layout.hpp"

namespace kindling::vmm {

Result<GuestMemory> GuestMemory::create(uint64_t size, const MemoryBacking& backing) {
  if (size == 0 || size % 4096 != 0) return make_error("guest memory size must be a non-zero multiple of 4 KiB");
  int flags = MAP_NORESERVE;
  int fd = -1;
  switch (backing.kind) {
    case MemoryBacking::Kind::kAnonymous:
      flags |= MAP_PRIVATE | MAP_ANONYMOUS;
      if (backing.huge_pages) flags |= MAP_HUGETLB;
      break;
    case MemoryBacking::Kind::kFilePrivate:
      flags |= MAP_PRIVATE;
      fd = backing.fd;
      break;
    case MemoryBacking::Kind::kFileShared:
      flags |= MAP_SHARED;
      fd = backing.fd;
      break;
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, fd, 0);
  if (p == MAP_FAILED) return make_error(fmt::format("cannot map {} MiB of guest memory: {}", size >> 20, std::strerror(errno)));
  // Guest memory never belongs in a host core dump, and must not be inherited.
  ::madvise(p, size, MADV_DONTDUMP);
  ::madvise(p, size, MADV_DONTFORK);

  GuestMemory mem;
  mem.mapping_ = static_cast<uint8_t*>(p);
  mem.size_ = size;
  uint64_t low = std::min<uint64_t>(size, layout::kMmioGapStart);
  mem.regions_.push_back({0, low, mem.mapping_});
  if (size > low) mem.regions_.push_back({layout::kMmioGapEnd, size - low, mem.mapping_ + low});
  return mem;
}

GuestMemory::GuestMemory(GuestMemory&& o) noexcept
    : mapping_(std::exchange(o.mapping_, nullptr)), size_(std::exchange(o.size_, 0)), regions_(std::move(o.regions_)) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& o) noexcept {
  if (this != &o) {
    if (mapping_) ::munmap(mapping_, size_);
    mapping_ = std::exchange(o.mapping_, nullptr);
    size_ = std::exchange(o.size_, 0);
    regions_ = std::move(o.regions_);
  }
  return *this;
}

GuestMemory::~GuestMemory() {
  if (mapping_) ::munmap(mapping_, size_);
}

Result<std::span<uint8_t>> GuestMemory::slice(uint64_t addr, uint64_t len) const {
  for (const auto& r : regions_) {
    // Written to avoid overflow: addr + len may wrap for hostile values.
    if (addr >= r.guest_addr && addr - r.guest_addr <= r.size && len <= r.size - (addr - r.guest_addr)) {
      return std::span<uint8_t>(r.host + (addr - r.guest_addr), len);
    }
  }
  return make_error(fmt::format("guest range {:#x}+{:#x} is outside guest memory", addr, len));
}

Status GuestMemory::write(uint64_t addr, std::span<const uint8_t> bytes) const {
  KINDLING_TRY(dst, slice(addr, bytes.size()));
  if (!bytes.empty()) std::memcpy(dst.data(), bytes.data(), bytes.size());
  return ok_status();
}

Status GuestMemory::read(uint64_t addr, std::span<uint8_t> out) const {
  KINDLING_TRY(src, slice(addr, out.size()));
  if (!out.empty()) std::memcpy(out.data(), src.data(), out.size());
  return ok_status();
}

}  // namespace kindling::vmm
