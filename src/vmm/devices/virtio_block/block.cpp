#include "vmm/devices/virtio_block/block.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kindling::vmm {
namespace {

// preadv/pwritev until done; false on an error or an unexpected end of file.
bool file_io(bool write, int fd, std::vector<iovec>& iov, uint64_t offset) {
  size_t first = 0;
  while (first < iov.size()) {
    ssize_t n = write ? ::pwritev(fd, iov.data() + first, static_cast<int>(iov.size() - first), static_cast<off_t>(offset))
                      : ::preadv(fd, iov.data() + first, static_cast<int>(iov.size() - first), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    offset += static_cast<uint64_t>(n);
    size_t left = static_cast<size_t>(n);
    while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (first < iov.size()) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return true;
}

}  // namespace

Result<std::shared_ptr<VirtioBlock>> VirtioBlock::open(const std::string& path, bool read_only, bool flush_to_disk,
                                                       std::string id, std::function<bool(uint64_t)> admit) {
  BlockBacking b;
  b.file.reset(::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (!b.file.valid()) return make_error(fmt::format("Unable to open or create the backing file: {} ({})", std::strerror(errno), path));
  struct stat st {};
  if (::fstat(b.file.get(), &st) != 0) return make_error(fmt::format("Cannot stat the backing file: {} ({})", std::strerror(errno), path));
  b.size_bytes = static_cast<uint64_t>(st.st_size);
  b.read_only = read_only;
  b.flush_to_disk = flush_to_disk;
  b.id = std::move(id);
  return std::make_shared<VirtioBlock>(std::move(b), std::move(admit));
}

VirtioBlock::VirtioBlock(BlockBacking backing, std::function<bool(uint64_t)> admit)
    : backing_(std::move(backing)), admit_(std::move(admit)) {}

uint64_t VirtioBlock::device_features() const {
  return kVirtioFVersion1 | kVirtioFEventIdx | kVirtioFIndirectDesc | kVirtioBlkFFlush |
         (backing_.read_only ? kVirtioBlkFRo : 0);
}

void VirtioBlock::read_config(uint64_t offset, std::span<uint8_t> data) const {
  // struct virtio_blk_config: capacity (le64) first; the rest is unused here.
  uint8_t cfg[8];
  uint64_t cap = capacity_sectors();
  std::memcpy(cfg, &cap, 8);
  read_config_bytes(cfg, offset, data);
}

void VirtioBlock::process_queue(uint16_t queue_index) {
  if (queue_index != 0) return;
  Virtqueue& q = queues_[0];
  for (;;) {
    DescriptorChain chain;
    if (deferred_) {
      chain = std::move(*deferred_);
      deferred_.reset();
    } else {
      auto next = q.pop();
      if (!next) return fail(next.error().message);
      if (!*next) break;
      chain = std::move(**next);
    }
    auto req = parse_block_request(*mem_, chain);
    if (!req) return fail(req.error().message);
    if (admit_ && !admit_(req->type == kBlkTIn || req->type == kBlkTOut ? req->data_len : 0)) {
      deferred_ = std::move(chain);  // the limiter's timer calls retry()
      break;
    }
    uint8_t status = check_block_request(*req, capacity_sectors(), backing_.read_only);
    uint32_t written = status == kBlkSOk ? execute(*req, status) : 0;
    if (auto s = mem_->write_obj(req->status_addr, status); !s) return fail(s.error().message);
    if (auto s = q.add_used(chain.head, written + 1); !s) return fail(s.error().message);
  }
  interrupt_if_needed(0);
}

uint32_t VirtioBlock::execute(const BlockRequest& r, uint8_t& status) {
  switch (r.type) {
    case kBlkTIn:
    case kBlkTOut: {
      std::vector<iovec> iov;
      iov.reserve(r.data.size());
      for (const GuestBuffer& b : r.data) {
        auto s = mem_->slice(b.addr, b.len);
        if (!s) {
          status = kBlkSIoErr;
          return 0;
        }
        iov.push_back({s->data(), s->size()});
      }
      const bool ok = file_io(r.type == kBlkTOut, backing_.file.get(), iov, r.sector * kSectorSize);
      status = ok ? kBlkSOk : kBlkSIoErr;
      return ok && r.type == kBlkTIn ? static_cast<uint32_t>(r.data_len) : 0;
    }
    case kBlkTFlush:
      status = !backing_.flush_to_disk || ::fdatasync(backing_.file.get()) == 0 ? kBlkSOk : kBlkSIoErr;
      return 0;
    case kBlkTGetId: {
      uint8_t id[kBlkIdBytes] = {};
      std::memcpy(id, backing_.id.data(), std::min<size_t>(backing_.id.size(), kBlkIdBytes));
      uint64_t done = 0;
      for (const GuestBuffer& b : r.data) {
        uint64_t n = std::min<uint64_t>(b.len, kBlkIdBytes - done);
        if (n == 0) break;
        if (!mem_->write(b.addr, std::span<const uint8_t>(id + done, n))) {
          status = kBlkSIoErr;
          return 0;
        }
        done += n;
      }
      status = kBlkSOk;
      return static_cast<uint32_t>(done);
    }
    default:
      status = kBlkSUnsupp;
      return 0;
  }
}

}  // namespace kindling::vmm
