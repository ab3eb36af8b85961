#include "vmm/devices/virtio_mmio/mmio_transport.hpp"

#include <fmt/format.h>

#include <cstring>

namespace kindling::vmm {
namespace {

// Register offsets (virtio 1.2, table 4.1).
enum : uint64_t {
  kMagic = 0x000, kVersion = 0x004, kDeviceId = 0x008, kVendorId = 0x00c,
  kDeviceFeatures = 0x010, kDeviceFeaturesSel = 0x014, kDriverFeatures = 0x020, kDriverFeaturesSel = 0x024,
  kQueueSel = 0x030, kQueueNumMax = 0x034, kQueueNum = 0x038, kQueueReady = 0x044, kQueueNotify = 0x050,
  kInterruptStatus = 0x060, kInterruptAck = 0x064, kStatus = 0x070,
  kQueueDescLow = 0x080, kQueueDescHigh = 0x084, kQueueAvailLow = 0x090, kQueueAvailHigh = 0x094,
  kQueueUsedLow = 0x0a0, kQueueUsedHigh = 0x0a4, kConfigGeneration = 0x0fc, kConfigSpace = 0x100,
};
constexpr uint32_t kMagicValue = 0x74726976;  // "virt"
constexpr uint32_t kVendor = 0x4b444c47;       // "GLDK"
constexpr uint32_t kStatusDriverOk = 4, kStatusFeaturesOk = 8, kStatusNeedsReset = 0x40, kStatusFailed = 0x80;
constexpr uint32_t kInterruptUsedBuffer = 1, kInterruptConfigChange = 2;

void set_low(uint64_t& v, uint32_t low) { v = (v & 0xffffffff00000000ull) | low; }
void set_high(uint64_t& v, uint32_t high) { v = (v & 0xffffffffull) | (uint64_t{high} << 32); }

}  // namespace

MmioTransport::MmioTransport(std::shared_ptr<VirtioDevice> device, std::function<void()> raise_irq,
                             const GuestMemory* memory)
    : device_(std::move(device)), raise_irq_(std::move(raise_irq)), memory_(memory) {
  for (uint16_t max : device_->queue_max_sizes()) queues_.push_back({max, max, false, 0, 0, 0});
}

void MmioTransport::read(uint64_t offset, std::span<uint8_t> data) {
  if (offset >= kConfigSpace) {
    std::lock_guard lock(mu_);
    device_->read_config(offset - kConfigSpace, data);
    return;
  }
  // Registers are 32-bit and aligned; anything else reads as zero (spec: undefined).
  if (data.size() != 4 || offset % 4 != 0) {
    std::memset(data.data(), 0, data.size());
    return;
  }
  std::lock_guard lock(mu_);
  uint32_t v = read_register(offset);
  std::memcpy(data.data(), &v, 4);
}

void MmioTransport::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= kConfigSpace) {
    std::lock_guard lock(mu_);
    device_->write_config(offset - kConfigSpace, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) return;
  uint32_t v;
  std::memcpy(&v, data.data(), 4);
  uint16_t notify_queue = 0;
  bool notify = false;
  {
    std::lock_guard lock(mu_);
    if (offset == kQueueNotify) {
      notify = activated_ && v < queues_.size();
      notify_queue = static_cast<uint16_t>(v);
    } else {
      write_register(offset, v);
    }
  }
  if (!notify) return;
  // Outside the lock: the device takes its own and may signal back.
  if (notifier_) {
    notifier_(notify_queue);
  } else {
    device_->queue_notify(notify_queue);
  }
}

// Called by devices on the device thread: no transport lock (lock order is
// transport -> device, and the device holds its own here).
void MmioTransport::signal_used_buffer() {
  interrupt_status_.fetch_or(kInterruptUsedBuffer);
  if (raise_irq_) raise_irq_();
}

void MmioTransport::signal_needs_reset() {
  needs_reset_ = true;
  interrupt_status_.fetch_or(kInterruptConfigChange);
  if (raise_irq_) raise_irq_();
}

uint32_t MmioTransport::device_status() const {
  std::lock_guard lock(mu_);
  return status_ | (needs_reset_ ? kStatusNeedsReset : 0);
}

void MmioTransport::save_state(VirtioSavedState& out) const {
  std::lock_guard lock(mu_);
  out.device_type = device_->device_type();
  out.status = status_;
  out.device_features_sel = device_features_sel_;
  out.driver_features_sel = driver_features_sel_;
  out.queue_sel = queue_sel_;
  out.interrupt_status = interrupt_status_;
  out.config_generation = config_generation_;
  out.driver_features = driver_features_;
  out.activated = activated_;
  out.needs_reset = needs_reset_;
  const VirtioDevice::SavedDevice dev = activated_ ? device_->save_device() : VirtioDevice::SavedDevice{};
  out.device_failed = dev.failed;
  out.queues.clear();
  for (size_t i = 0; i < queues_.size(); ++i) {
    const VirtqueueConfig& q = queues_[i];
    VirtqueueSavedState s;
    s.max_size = q.max_size;
    s.size = q.size;
    s.ready = q.ready ? 1 : 0;
    s.desc_table = q.desc_table;
    s.avail_ring = q.avail_ring;
    s.used_ring = q.used_ring;
    if (i < dev.queues.size()) {
      s.next_avail = dev.queues[i].next_avail;
      s.next_used = dev.queues[i].next_used;
      s.signalled_used = dev.queues[i].signalled_used;
    }
    out.queues.push_back(s);
  }
}

Status MmioTransport::restore_state(const VirtioSavedState& in) {
  std::lock_guard lock(mu_);
  if (in.device_type != device_->device_type()) {
    return make_error(fmt::format("saved device type {} restored onto type {}", in.device_type, device_->device_type()));
  }
  if (in.queues.size() != queues_.size()) return make_error(fmt::format("{} saved queues for a device with {}", in.queues.size(), queues_.size()));
  for (size_t i = 0; i < queues_.size(); ++i) {
    const VirtqueueSavedState& s = in.queues[i];
    if (s.max_size != queues_[i].max_size) return make_error(fmt::format("queue {} had maximum size {}, now {}", i, s.max_size, queues_[i].max_size));
    queues_[i] = {s.max_size, s.size, s.ready != 0, s.desc_table, s.avail_ring, s.used_ring};
  }
  if (in.activated && ((in.driver_features & ~device_->device_features()) || !(in.driver_features & kVirtioFVersion1))) {
    return make_error("the saved driver features are not ones this device offers");
  }
  status_ = in.status;
  device_features_sel_ = in.device_features_sel;
  driver_features_sel_ = in.driver_features_sel;
  queue_sel_ = in.queue_sel;
  interrupt_status_ = in.interrupt_status;
  config_generation_ = in.config_generation;
  driver_features_ = in.driver_features;
  needs_reset_ = in.needs_reset;
  activated_ = in.activated;
  if (!activated_) return ok_status();
  VirtioActivation a = make_activation();
  VirtioDevice::SavedDevice dev;
  dev.failed = in.device_failed;
  for (const auto& s : in.queues) dev.queues.push_back({s.next_avail, s.next_used, s.signalled_used});
  return device_->restore_device(std::move(a), dev);
}

VirtqueueConfig* MmioTransport::selected_queue() { return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr; }

uint32_t MmioTransport::read_register(uint64_t offset) {
  switch (offset) {
    case kMagic: return kMagicValue;
    case kVersion: return 2;
    case kDeviceId: return device_->device_type();
    case kVendorId: return kVendor;
    case kDeviceFeatures: {
      uint64_t f = device_->device_features();
      return device_features_sel_ == 0 ? static_cast<uint32_t>(f) : device_features_sel_ == 1 ? static_cast<uint32_t>(f >> 32) : 0;
    }
    case kQueueNumMax: return selected_queue() ? selected_queue()->max_size : 0;
    case kQueueReady: return selected_queue() && selected_queue()->ready ? 1 : 0;
    case kInterruptStatus: return interrupt_status_;
    case kStatus: return status_ | (needs_reset_ ? kStatusNeedsReset : 0);
    case kConfigGeneration: return config_generation_;
    default: return 0;
  }
}

void MmioTransport::write_register(uint64_t offset, uint32_t v) {
  VirtqueueConfig* q = selected_queue();
  // Queue layout may change only before the driver says it is done.
  bool queue_writable = q && !(status_ & kStatusDriverOk) && !q->ready;
  switch (offset) {
    case kDeviceFeaturesSel: device_features_sel_ = v; break;
    case kDriverFeaturesSel: driver_features_sel_ = v; break;
    case kDriverFeatures:
      if (status_ & kStatusFeaturesOk) break;
      if (driver_features_sel_ == 0) set_low(driver_features_, v);
      if (driver_features_sel_ == 1) set_high(driver_features_, v);
      break;
    case kQueueSel: queue_sel_ = v; break;
    case kQueueNum:
      // A size must be a power of two no larger than the device's maximum.
      if (queue_writable && v != 0 && v <= q->max_size && (v & (v - 1)) == 0) q->size = static_cast<uint16_t>(v);
      break;
    case kQueueReady: if (q && !(status_ & kStatusDriverOk)) q->ready = v == 1; break;
    case kQueueDescLow: if (queue_writable) set_low(q->desc_table, v); break;
    case kQueueDescHigh: if (queue_writable) set_high(q->desc_table, v); break;
    case kQueueAvailLow: if (queue_writable) set_low(q->avail_ring, v); break;
    case kQueueAvailHigh: if (queue_writable) set_high(q->avail_ring, v); break;
    case kQueueUsedLow: if (queue_writable) set_low(q->used_ring, v); break;
    case kQueueUsedHigh: if (queue_writable) set_high(q->used_ring, v); break;
    case kInterruptAck: interrupt_status_.fetch_and(~v); break;
    case kStatus:
      if (v == 0) {
        reset_locked();
        break;
      }
      if ((v & kStatusFeaturesOk) && !(status_ & kStatusFeaturesOk) &&
          (driver_features_ & ~device_->device_features())) {
        v &= ~kStatusFeaturesOk;  // driver acked features we never offered
      }
      status_ = v;
      if ((status_ & kStatusDriverOk) && !(status_ & kStatusFailed) && !activated_) {
        if (!(driver_features_ & kVirtioFVersion1)) {
          status_ |= kStatusFailed;  // legacy drivers are not supported
          break;
        }
        activated_ = true;
        VirtioActivation a = make_activation();
        device_->activate(std::move(a));
      }
      break;
    default: break;
  }
}

void MmioTransport::reset_locked() {
  device_->reset();
  for (auto& q : queues_) q = {q.max_size, q.max_size, false, 0, 0, 0};
  driver_features_ = 0;
  status_ = 0;
  interrupt_status_ = 0;
  needs_reset_ = false;
  queue_sel_ = 0;
  activated_ = false;
  ++config_generation_;
}

// What the device gets when the driver activates it, or when a snapshot
// restores it active: the rings as the transport holds them.
VirtioActivation MmioTransport::make_activation() {
  VirtioActivation a;
  a.memory = memory_;
  a.acked_features = driver_features_;
  a.queues = queues_;
  a.signal_used = [this] { signal_used_buffer(); };
  a.fail = [this](const std::string&) { signal_needs_reset(); };
  return a;
}

}  // namespace kindling::vmm
