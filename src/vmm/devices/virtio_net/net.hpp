// virtio-net with a tap backend. No offloads are offered (no checksum, TSO
// or mergeable RX buffers), so every frame is a plain Ethernet frame behind
// a 12-byte virtio_net_hdr that we strip on TX and write zeroed on RX. Frames
// move with readv/writev between the tap and guest memory: no host buffer.
// Chains are parsed and bounded by frame.* (fuzz target vmm_fuzz_net_frame).
// Rate limiters as in Firecracker: a TX frame over budget stays in the
// guest's ring; an RX frame is read into the guest's buffer first (its
// length is unknown until then) and held back from the used ring until the
// budget allows. Either limiter's timer re-runs both directions.
#pragma once

#include <array>
#include <optional>
#include <string>

#include "common/unique_fd.hpp"
#include "vmm/devices/rate_limiter.hpp"
#include "vmm/devices/virtio_mmio/virtio_device.hpp"
#include "vmm/devices/virtio_net/frame.hpp"

namespace kindling::vmm {

inline constexpr uint64_t kVirtioNetFMac = 1ull << 5;

struct NetLimiters {
  std::shared_ptr<RateLimiter> rx;  // null: unlimited
  std::shared_ptr<RateLimiter> tx;
};

class VirtioNet : public VirtioDeviceBase {
 public:
  // Opens the existing tap `host_dev_name` (IFF_TAP | IFF_NO_PI).
  static Result<std::shared_ptr<VirtioNet>> open_tap(const std::string& host_dev_name,
                                                     std::optional<std::array<uint8_t, 6>> mac, NetLimiters limiters = {});
  VirtioNet(UniqueFd tap, std::optional<std::array<uint8_t, 6>> mac, NetLimiters limiters = {})
      : tap_(std::move(tap)), mac_(mac), limiters_(std::move(limiters)) {}

  uint32_t device_type() const override { return kVirtioNet; }
  uint64_t device_features() const override {
    return kVirtioFVersion1 | kVirtioFEventIdx | kVirtioFIndirectDesc | (mac_ ? kVirtioNetFMac : 0);
  }
  std::vector<uint16_t> queue_max_sizes() const override { return {256, 256}; }  // rx, tx
  void read_config(uint64_t offset, std::span<uint8_t> data) const override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}
  Status start_backend(DeviceEventLoop& loop) override;
  uint64_t tx_dropped() const { return tx_dropped_; }
  // What a snapshot records to open the device again.
  const std::string& host_dev_name() const { return host_dev_name_; }
  const std::optional<std::array<uint8_t, 6>>& mac() const { return mac_; }

 protected:
  void process_queue(uint16_t queue_index) override;
  void on_reset() override { rx_held_.reset(); }
  // A frame the RX limiter holds back is in a popped, unused chain; a
  // snapshot drops the frame (frames in flight are not saved) and hands the
  // chain back to the restored device as not yet popped.
  uint16_t deferred_chains() const override { return rx_held_ ? 1 : 0; }

 private:
  struct HeldFrame {
    uint16_t head;
    uint32_t len;  // header included
  };
  void process_tx();
  void fill_rx();
  bool release_held_rx();  // false while the RX limiter still holds the frame

  UniqueFd tap_;
  std::string host_dev_name_;
  std::optional<std::array<uint8_t, 6>> mac_;
  NetLimiters limiters_;
  std::optional<HeldFrame> rx_held_;  // read into guest memory, not yet used: over the RX budget
  bool tap_readable_ = false;
  uint64_t tx_dropped_ = 0;
};

// "06:00:0a:00:00:02" -> bytes.
std::optional<std::array<uint8_t, 6>> parse_mac(const std::string& text);

}  // namespace kindling::vmm
