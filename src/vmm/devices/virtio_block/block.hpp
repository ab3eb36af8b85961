// virtio-blk backed by a host file: read, write, flush and get-id, with
// read-only enforcement in the device (a write to a read-only disk is
// answered VIRTIO_BLK_S_IOERR and never reaches the host file). Data moves
// with preadv/pwritev straight between the file and guest memory, so no
// host buffer grows with what the guest asks for.
#pragma once

#include <functional>
#include <string>

#include "common/unique_fd.hpp"
#include "vmm/devices/virtio_block/request.hpp"
#include "vmm/devices/virtio_mmio/virtio_device.hpp"

namespace kindling::vmm {

inline constexpr uint64_t kVirtioBlkFRo = 1ull << 5;
inline constexpr uint64_t kVirtioBlkFFlush = 1ull << 9;

struct BlockBacking {
  UniqueFd file;
  uint64_t size_bytes = 0;
  bool read_only = false;
  bool flush_to_disk = false;  // cache_type Writeback: FLUSH is fdatasync
  std::string id;              // GET_ID answer (drive_id, at most 20 bytes used)
};

class VirtioBlock : public VirtioDeviceBase {
 public:
  // Opens `path` read-only or read-write; the capacity is the file size in whole sectors.
  static Result<std::shared_ptr<VirtioBlock>> open(const std::string& path, bool read_only, bool flush_to_disk,
                                                   std::string id, std::function<bool(uint64_t)> admit = {});
  // `admit(bytes)` is the rate limiter, as for VirtioEntropy.
  explicit VirtioBlock(BlockBacking backing, std::function<bool(uint64_t)> admit = {});

  uint32_t device_type() const override { return kVirtioBlock; }
  uint64_t device_features() const override;
  std::vector<uint16_t> queue_max_sizes() const override { return {256}; }
  void read_config(uint64_t offset, std::span<uint8_t> data) const override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}
  void retry() { queue_notify(0); }
  uint64_t capacity_sectors() const { return backing_.size_bytes / kSectorSize; }
  uint64_t size_bytes() const { return backing_.size_bytes; }

 protected:
  void process_queue(uint16_t queue_index) override;

 private:
  // Runs one request; returns the number of bytes written into guest buffers.
  uint32_t execute(const BlockRequest& r, uint8_t& status);
  void on_reset() override { deferred_.reset(); }
  uint16_t deferred_chains() const override { return deferred_ ? 1 : 0; }

  BlockBacking backing_;
  std::function<bool(uint64_t)> admit_;
  std::optional<DescriptorChain> deferred_;
};

}  // namespace kindling::vmm
