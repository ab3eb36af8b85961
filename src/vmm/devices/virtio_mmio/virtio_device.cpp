#include "vmm/devices/virtio_mmio/virtio_device.hpp"

#include "vmm/logger.hpp"

#include <fmt/format.h>

#include <cstring>

namespace kindling::vmm {

// Shared by activate() and restore_device(); the caller holds mu_.
void VirtioDeviceBase::adopt(VirtioActivation activation) {
  activation_ = std::move(activation);
  mem_ = activation_.memory;
  acked_features_ = activation_.acked_features;
  queues_.clear();
  active_ = true;
}

void VirtioDeviceBase::activate(VirtioActivation activation) {
  std::lock_guard lock(mu_);
  adopt(std::move(activation));
  failed_ = false;
  if (!mem_) {
    fail("no guest memory");
    return;
  }
  for (size_t i = 0; i < activation_.queues.size(); ++i) {
    auto q = Virtqueue::create(*mem_, activation_.queues[i], acked_features_);
    if (!q) {
      fail("queue " + std::to_string(i) + ": " + q.error().message);
      return;
    }
    queues_.push_back(std::move(*q));
  }
  on_activate();
}

void VirtioDeviceBase::queue_notify(uint16_t queue_index) {
  std::lock_guard lock(mu_);
  if (!usable() || queue_index >= queues_.size()) return;
  process_queue(queue_index);
}

void VirtioDeviceBase::reset() {
  std::lock_guard lock(mu_);
  on_reset();
  queues_.clear();
  active_ = false;
  failed_ = false;
  mem_ = nullptr;
  activation_ = {};
}

VirtioDevice::SavedDevice VirtioDeviceBase::save_device() const {
  std::lock_guard lock(mu_);
  SavedDevice d;
  d.failed = failed_;
  for (size_t i = 0; i < queues_.size(); ++i) {
    const Virtqueue& q = queues_[i];
    const uint16_t rewind = i == 0 ? deferred_chains() : 0;
    d.queues.push_back({static_cast<uint16_t>(q.next_avail() - rewind), q.next_used(), q.signalled_used()});
  }
  return d;
}

Status VirtioDeviceBase::restore_device(VirtioActivation activation, const SavedDevice& saved) {
  std::lock_guard lock(mu_);
  adopt(std::move(activation));
  failed_ = saved.failed;
  if (failed_) return ok_status();  // the driver must reset it, as before the snapshot
  if (!mem_) return make_error("no guest memory");
  if (saved.queues.size() != activation_.queues.size()) {
    return make_error(fmt::format("{} saved queue positions for {} queues", saved.queues.size(), activation_.queues.size()));
  }
  for (size_t i = 0; i < activation_.queues.size(); ++i) {
    auto q = Virtqueue::create(*mem_, activation_.queues[i], acked_features_);
    if (!q) return make_error(fmt::format("queue {}: {}", i, q.error().message));
    q->set_positions(saved.queues[i].next_avail, saved.queues[i].next_used, saved.queues[i].signalled_used);
    queues_.push_back(std::move(*q));
  }
  on_activate();
  on_restore();
  return ok_status();
}

bool VirtioDeviceBase::failed() const {
  std::lock_guard lock(mu_);
  return failed_;
}

void VirtioDeviceBase::run_if_active(const std::function<void()>& fn) {
  std::lock_guard lock(mu_);
  if (usable()) fn();
}

void VirtioDeviceBase::fail(const std::string& why) {
  if (failed_) return;
  failed_ = true;
  log_warn("virtio device type {}: {}; marked DEVICE_NEEDS_RESET", device_type(), why);
  if (activation_.fail) activation_.fail(why);
}

void VirtioDeviceBase::interrupt_if_needed(size_t q) {
  if (q < queues_.size() && queues_[q].needs_interrupt() && activation_.signal_used) activation_.signal_used();
}

void read_config_bytes(std::span<const uint8_t> src, uint64_t offset, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  if (offset >= src.size()) return;
  size_t n = std::min<uint64_t>(data.size(), src.size() - offset);
  std::memcpy(data.data(), src.data() + offset, n);
}

}  // namespace kindling::vmm
