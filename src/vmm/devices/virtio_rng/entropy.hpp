// virtio-rng (virtio 1.2, section 5.4): one request queue; every
// device-writable buffer the driver offers is filled from getrandom(2),
// written straight into guest memory (no host buffer), at most
// kMaxBytesPerRequest per chain so one request cannot hold the device thread.
#pragma once

#include <functional>

#include "vmm/devices/virtio_mmio/virtio_device.hpp"

namespace kindling::vmm {

class VirtioEntropy : public VirtioDeviceBase {
 public:
  static constexpr uint32_t kMaxBytesPerRequest = 64 * 1024;
  // `admit(bytes)` is the rate limiter: false defers the request (the
  // limiter calls retry() when tokens are back). Null: no limit.
  explicit VirtioEntropy(std::function<bool(uint64_t bytes)> admit = {}) : admit_(std::move(admit)) {}

  uint32_t device_type() const override { return kVirtioEntropy; }
  uint64_t device_features() const override { return kVirtioFVersion1 | kVirtioFEventIdx | kVirtioFIndirectDesc; }
  std::vector<uint16_t> queue_max_sizes() const override { return {256}; }
  void read_config(uint64_t offset, std::span<uint8_t> data) const override { read_config_bytes({}, offset, data); }
  void write_config(uint64_t, std::span<const uint8_t>) override {}
  // Picks up requests deferred by the rate limiter.
  void retry() { queue_notify(0); }

  uint64_t bytes_served() const { return bytes_served_; }

 protected:
  void process_queue(uint16_t queue_index) override;

 private:
  std::function<bool(uint64_t)> admit_;
  std::optional<DescriptorChain> deferred_;
  uint64_t bytes_served_ = 0;

  void on_reset() override { deferred_.reset(); }
  uint16_t deferred_chains() const override { return deferred_ ? 1 : 0; }
};

}  // namespace kindling::vmm
