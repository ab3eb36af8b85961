// virtio-net with a tap backend. No offloads are offered (no checksum, TSO
// or mergeable RX buffers), so every frame is a plain Ethernet frame behind
// a 12-byte virtio_net_hdr that we strip on TX and write zeroed on RX. Frames
// move with readv/writev between the tap and guest memory: no host buffer.
// Chains are parsed and bounded by frame.* (fuzz target vmm_fuzz_net_frame).
#pragma once

#include <array>
#include <optional>
#include <string>

#include "common/unique_fd.hpp"
#include "vmm/devices/virtio_mmio/virtio_device.hpp"
#include "vmm/devices/virtio_net/frame.hpp"

namespace kindling::vmm {

inline constexpr uint64_t kVirtioNetFMac = 1ull << 5;

class VirtioNet : public VirtioDeviceBase {
 public:
  // Opens the existing tap `host_dev_name` (IFF_TAP | IFF_NO_PI).
  static Result<std::shared_ptr<VirtioNet>> open_tap(const std::string& host_dev_name,
                                                     std::optional<std::array<uint8_t, 6>> mac);
  VirtioNet(UniqueFd tap, std::optional<std::array<uint8_t, 6>> mac) : tap_(std::move(tap)), mac_(mac) {}

  uint32_t device_type() const override { return kVirtioNet; }
  uint64_t device_features() const override {
    return kVirtioFVersion1 | kVirtioFEventIdx | kVirtioFIndirectDesc | (mac_ ? kVirtioNetFMac : 0);
  }
  std::vector<uint16_t> queue_max_sizes() const override { return {256, 256}; }  // rx, tx
  void read_config(uint64_t offset, std::span<uint8_t> data) const override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}
  Status start_backend(DeviceEventLoop& loop) override;
  uint64_t tx_dropped() const { return tx_dropped_; }

 protected:
  void process_queue(uint16_t queue_index) override;

 private:
  void process_tx();
  void fill_rx();

  UniqueFd tap_;
  std::optional<std::array<uint8_t, 6>> mac_;
  bool tap_readable_ = false;
  uint64_t tx_dropped_ = 0;
};

// "06:00:0a:00:00:02" -> bytes.
std::optional<std::array<uint8_t, 6>> parse_mac(const std::string& text);

}  // namespace kindling::vmm
