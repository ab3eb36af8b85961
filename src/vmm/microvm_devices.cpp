#include "vmm/microvm_devices.hpp"

#include <fmt/format.h>
#include "vmm/logger.hpp"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmm/arch/x86/layout.hpp"
#include "vmm/devices/virtio_block/block.hpp"
#include "vmm/devices/virtio_net/net.hpp"
#include "vmm/devices/virtio_rng/entropy.hpp"
#include "vmm/devices/virtio_vsock/vsock.hpp"

namespace kindling::vmm {
namespace {

void add_slot(std::vector<VirtioSlot>& slots, std::string name, std::shared_ptr<VirtioDevice> device,
              std::vector<std::shared_ptr<RateLimiter>> limiters = {}) {
  VirtioSlot s;
  for (size_t i = 0; i < limiters.size() && i < s.limiter_roles.size(); ++i) s.limiter_roles[i] = limiters[i];
  for (auto& l : limiters) {
    if (l) s.limiters.push_back(std::move(l));
  }
  s.name = std::move(name);
  s.mmio_base = layout::kVirtioMmioBase + slots.size() * layout::kVirtioMmioWindow;
  s.irq = layout::kFirstVirtioIrq + static_cast<uint32_t>(slots.size());
  s.device = std::move(device);
  slots.push_back(std::move(s));
}

Result<std::shared_ptr<RateLimiter>> make_limiter(const std::optional<RateLimiterConfig>& c) {
  if (!c || (!c->bandwidth && !c->ops)) return std::shared_ptr<RateLimiter>();
  return RateLimiter::create(*c);
}

std::function<bool(uint64_t)> admit_through(const std::shared_ptr<RateLimiter>& limiter) {
  if (!limiter) return {};
  return [limiter](uint64_t bytes) { return limiter->consume(bytes); };
}

}  // namespace

Result<VirtioDevices> VirtioDevices::create(const VmResources& res) {
  VirtioDevices d;
  // Drives first (the root one leads), so /dev/vda is the root device.
  for (const DriveConfig& drive : res.drives) {
    KINDLING_TRY(limiter, make_limiter(drive.rate_limiter));
    KINDLING_TRY(block, VirtioBlock::open(drive.path_on_host, drive.is_read_only, drive.cache_type == "Writeback",
                                          drive.drive_id, admit_through(limiter)));
    add_slot(d.slots_, "block:" + drive.drive_id, block, {limiter});
    d.slots_.back().block_path = drive.path_on_host;
    d.slots_.back().block_id = drive.drive_id;
    d.slots_.back().block_read_only = drive.is_read_only;
    d.slots_.back().block_flush = drive.cache_type == "Writeback";
    if (drive.is_root_device) {
      d.root_arg_ = drive.partuuid ? " root=PARTUUID=" + *drive.partuuid : std::string(" root=/dev/vda");
      d.root_arg_ += drive.is_read_only ? " ro" : " rw";
    }
  }
  for (const NetworkInterfaceConfig& n : res.network_interfaces) {
    std::optional<std::array<uint8_t, 6>> mac;
    if (n.guest_mac) mac = parse_mac(*n.guest_mac);
    KINDLING_TRY(rx, make_limiter(n.rx_rate_limiter));
    KINDLING_TRY(tx, make_limiter(n.tx_rate_limiter));
    KINDLING_TRY(net, VirtioNet::open_tap(n.host_dev_name, mac, NetLimiters{rx, tx}));
    add_slot(d.slots_, "net:" + n.iface_id, net, {rx, tx});
    d.slots_.back().net_iface_id = n.iface_id;
  }
  if (res.vsock) {
    KINDLING_TRY(vsock, VirtioVsock::create(res.vsock->guest_cid, res.vsock->uds_path));
    add_slot(d.slots_, "vsock", vsock);
  }
  if (res.entropy) {
    KINDLING_TRY(limiter, make_limiter(res.entropy->rate_limiter));
    add_slot(d.slots_, "rng", std::make_shared<VirtioEntropy>(admit_through(limiter)), {limiter});
  }
  if (d.slots_.size() > kMaxVirtioDevices) return make_error("Too many virtio devices.");
  return d;
}

std::string VirtioDevices::cmdline_entries() const {
  std::string out;
  for (const auto& s : slots_) {
    out += fmt::format(" virtio_mmio.device=4K@{:#x}:{}", s.mmio_base, s.irq);
  }
  out += root_arg_;
  return out;
}

Status VirtioDevices::attach(KvmVm& vm, const GuestMemory& memory, DeviceBus& mmio_bus, bool use_ioeventfd) {
  if (slots_.empty()) return ok_status();
  KINDLING_TRY(loop, DeviceEventLoop::create());
  loop_ = std::move(loop);
  for (auto& s : slots_) {
    KINDLING_TRY(irq, vm.register_irqfd(s.irq));
    s.irq_event = std::move(irq);
    const int irq_fd = s.irq_event.get();
    s.transport = std::make_shared<MmioTransport>(
        s.device,
        [irq_fd] {
          uint64_t one = 1;
          // A full counter (EAGAIN) means an interrupt is already pending: fine.
          [[maybe_unused]] ssize_t n = ::write(irq_fd, &one, sizeof(one));
        },
        &memory);
    const size_t queues = s.device->queue_max_sizes().size();
    s.ioeventfd = use_ioeventfd;
    for (size_t q = 0; q < queues; ++q) {
      UniqueFd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      if (!efd.valid()) return make_error(fmt::format("eventfd: {}", std::strerror(errno)));
      const int fd = efd.get();
      Status st = use_ioeventfd ? vm.register_ioeventfd(s.mmio_base + MmioTransport::kQueueNotifyOffset, 4, q, fd)
                                : Status(make_error("turned off by --no-ioeventfd"));
      if (!st) {
        // The MMIO exit still reaches the transport, which writes the same eventfd.
        if (s.ioeventfd) log_info("virtio {}: no ioeventfd ({}); using MMIO exits for notifications", s.name, st.error().message);
        s.ioeventfd = false;
      }
      std::weak_ptr<VirtioDevice> weak = s.device;
      auto added = loop_->add(fd, EPOLLIN, [fd, weak, q](uint32_t) {
        uint64_t count;
        [[maybe_unused]] ssize_t n = ::read(fd, &count, sizeof(count));
        if (auto dev = weak.lock()) dev->queue_notify(static_cast<uint16_t>(q));
      });
      if (!added) return added.error();
      s.queue_events.push_back(std::move(efd));
    }
    std::vector<int> fds;
    for (auto& e : s.queue_events) fds.push_back(e.get());
    s.transport->set_queue_notifier([fds](uint16_t q) {
      if (q >= fds.size()) return;
      uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(fds[q], &one, sizeof(one));
    });
    if (auto st = s.device->start_backend(*loop_); !st) return st;
    for (const std::shared_ptr<RateLimiter>& limiter : s.limiters) {
      std::weak_ptr<VirtioDevice> weak = s.device;
      auto added = loop_->add(limiter->timer_fd(), EPOLLIN, [limiter, weak](uint32_t) {
        limiter->on_timer();
        if (auto dev = weak.lock()) dev->queue_notify(0);  // picks up the deferred request
      });
      if (!added) return added.error();
    }
    if (auto st = mmio_bus.insert(s.transport, s.mmio_base, layout::kVirtioMmioWindow, "virtio-" + s.name); !st) return st;
    log_info("virtio {} at {:#x} irq {} ({} queue(s), notifications by {})", s.name, s.mmio_base, s.irq, queues,
                 s.ioeventfd ? "ioeventfd" : "MMIO exit");
  }
  return ok_status();
}

Status VirtioDevices::save(std::vector<VirtioSavedState>& out) const {
  out.clear();
  for (const VirtioSlot& s : slots_) {
    const uint32_t type = s.device->device_type();
    if (type != kVirtioBlock && type != kVirtioEntropy && type != kVirtioNet && type != kVirtioVsock) {
      return make_error(fmt::format("Snapshots of a microVM with a virtio {} device are not supported.", s.name));
    }
    if (!s.transport) return make_error("The virtio devices are not attached.");
    VirtioSavedState d;
    s.transport->save_state(d);
    d.name = s.name;
    if (type == kVirtioBlock) {
      d.block_path = s.block_path;
      d.block_id = s.block_id;
      d.block_read_only = s.block_read_only;
      d.block_flush = s.block_flush;
      d.block_size_bytes = std::static_pointer_cast<VirtioBlock>(s.device)->size_bytes();
    } else if (type == kVirtioNet) {
      const auto net = std::static_pointer_cast<VirtioNet>(s.device);
      d.net_iface_id = s.net_iface_id;
      d.net_host_dev_name = net->host_dev_name();
      d.net_mac = net->mac();
    } else if (type == kVirtioVsock) {
      const auto vsock = std::static_pointer_cast<VirtioVsock>(s.device);
      d.vsock_guest_cid = vsock->guest_cid();
      d.vsock_uds_path = vsock->uds_path();
    }
    for (size_t i = 0; i < s.limiter_roles.size(); ++i) {
      if (s.limiter_roles[i]) d.limiters[i] = s.limiter_roles[i]->save();
    }
    out.push_back(std::move(d));
  }
  return ok_status();
}

Result<VirtioDevices> VirtioDevices::from_snapshot(const std::vector<VirtioSavedState>& saved) {
  VirtioDevices d;
  auto limiter = [](const std::optional<RateLimiterSavedState>& l) -> Result<std::shared_ptr<RateLimiter>> {
    if (!l) return std::shared_ptr<RateLimiter>();
    return RateLimiter::restore(*l);
  };
  for (const VirtioSavedState& v : saved) {
    if (v.device_type == kVirtioBlock) {
      KINDLING_TRY(l, limiter(v.limiters[0]));
      // The backing file as saved (Firecracker does the same); it must still
      // be the size the guest knows, or its reads past the end would fail.
      KINDLING_TRY(block, VirtioBlock::open(v.block_path, v.block_read_only, v.block_flush, v.block_id, admit_through(l)));
      if (block->size_bytes() != v.block_size_bytes) {
        return make_error(fmt::format("The block device {}'s backing file {} is {} bytes; the snapshot's guest knows it as {}.", v.name,
                                      v.block_path, block->size_bytes(), v.block_size_bytes));
      }
      add_slot(d.slots_, v.name, block, {l});
      d.slots_.back().block_path = v.block_path;
      d.slots_.back().block_id = v.block_id;
      d.slots_.back().block_read_only = v.block_read_only;
      d.slots_.back().block_flush = v.block_flush;
    } else if (v.device_type == kVirtioEntropy) {
      KINDLING_TRY(l, limiter(v.limiters[0]));
      add_slot(d.slots_, v.name, std::make_shared<VirtioEntropy>(admit_through(l)), {l});
    } else if (v.device_type == kVirtioNet) {
      KINDLING_TRY(rx, limiter(v.limiters[0]));
      KINDLING_TRY(tx, limiter(v.limiters[1]));
      // The tap named by the snapshot, or by a network override of this
      // iface_id (already applied to `v`); the guest keeps its MAC.
      auto net = VirtioNet::open_tap(v.net_host_dev_name, v.net_mac, NetLimiters{rx, tx});
      if (!net) return make_error(fmt::format("Cannot restore the network interface `{}`: {}", v.net_iface_id, net.error().message));
      add_slot(d.slots_, v.name, *net, {rx, tx});
      d.slots_.back().net_iface_id = v.net_iface_id;
    } else if (v.device_type == kVirtioVsock) {
      // A fresh listener, no connections: the guest is told to drop its own
      // (TRANSPORT_RESET) once the device runs.
      auto vsock = VirtioVsock::create(v.vsock_guest_cid, v.vsock_uds_path);
      if (!vsock) return make_error(fmt::format("Cannot restore the vsock device: {}", vsock.error().message));
      add_slot(d.slots_, v.name, *vsock);
    } else {
      return make_error(fmt::format("The snapshot's virtio {} device (type {}) cannot be restored.", v.name, v.device_type));
    }
  }
  if (d.slots_.size() > kMaxVirtioDevices) return make_error("Too many virtio devices.");
  return d;
}

Status VirtioDevices::restore(const std::vector<VirtioSavedState>& saved) {
  if (saved.size() != slots_.size()) return make_error("The restored virtio devices do not match the snapshot's.");
  for (size_t i = 0; i < slots_.size(); ++i) {
    VirtioSlot& s = slots_[i];
    if (auto st = s.transport->restore_state(saved[i]); !st) {
      return make_error(fmt::format("Cannot restore the virtio {} device: {}", s.name, st.error().message));
    }
    // A notification the guest sent just before the pause may not have been
    // served yet, and its eventfd did not survive: one kick per queue makes
    // the device look at the avail ring once it runs (nothing new: no-op).
    if (saved[i].activated) {
      for (const UniqueFd& e : s.queue_events) {
        uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(e.get(), &one, sizeof(one));
      }
    }
  }
  return ok_status();
}

void VirtioDevices::start(std::function<void()> thread_setup) {
  if (loop_) loop_->start(std::move(thread_setup));
}

void VirtioDevices::stop() {
  if (loop_) loop_->stop();
}

}  // namespace kindling::vmm
