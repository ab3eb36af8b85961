#include "vmm/devices/virtio_net/net.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kindling::vmm {
namespace {

// iovecs over buffers the parser already checked against guest memory.
std::vector<iovec> iovecs(const GuestMemory& mem, const std::vector<GuestBuffer>& bufs) {
  std::vector<iovec> out;
  out.reserve(bufs.size());
  for (const GuestBuffer& b : bufs) {
    auto s = mem.slice(b.addr, b.len);
    if (s) out.push_back({s->data(), s->size()});
  }
  return out;
}

}  // namespace

std::optional<std::array<uint8_t, 6>> parse_mac(const std::string& text) {
  std::array<uint8_t, 6> mac{};
  if (text.size() != 17) return std::nullopt;
  for (int i = 0; i < 6; ++i) {
    if (i > 0 && text[3 * i - 1] != ':') return std::nullopt;
    unsigned v = 0;
    for (int j = 0; j < 2; ++j) {
      char c = text[3 * i + j];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return std::nullopt;
      v = v * 16 + static_cast<unsigned>(d);
    }
    mac[i] = static_cast<uint8_t>(v);
  }
  return mac;
}

Result<std::shared_ptr<VirtioNet>> VirtioNet::open_tap(const std::string& name, std::optional<std::array<uint8_t, 6>> mac,
                                                       NetLimiters limiters) {
  if (name.empty() || name.size() >= IFNAMSIZ) return make_error(fmt::format("Invalid tap name `{}`.", name));
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return make_error(fmt::format("Cannot open /dev/net/tun: {}", std::strerror(errno)));
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.c_str(), name.size());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
    return make_error(fmt::format("Could not open the tap device `{}`: {}", name, std::strerror(errno)));
  }
  auto net = std::make_shared<VirtioNet>(std::move(fd), mac, std::move(limiters));
  net->host_dev_name_ = name;
  return net;
}

void VirtioNet::read_config(uint64_t offset, std::span<uint8_t> data) const {
  uint8_t cfg[6] = {};
  if (mac_) std::memcpy(cfg, mac_->data(), 6);
  read_config_bytes(cfg, offset, data);
}

Status VirtioNet::start_backend(DeviceEventLoop& loop) {
  return loop.add(tap_.get(), EPOLLIN | EPOLLET, [this](uint32_t) {
    std::lock_guard lock(mu_);
    tap_readable_ = true;
    if (!usable()) return;
    fill_rx();
    interrupt_if_needed(0);
  });
}

void VirtioNet::process_queue(uint16_t) {
  // Any notification may be a limiter's timer: both directions retry.
  process_tx();
  if (!usable()) return;
  fill_rx();  // a TX kick or new RX buffers may both let waiting frames in
  if (!usable()) return;
  interrupt_if_needed(0);
  interrupt_if_needed(1);
}

void VirtioNet::process_tx() {
  Virtqueue& tx = queues_[1];
  for (;;) {
    auto next = tx.pop();
    if (!next) return fail(next.error().message);
    if (!*next) return;
    const DescriptorChain& c = **next;
    auto frame = parse_net_tx(c);
    if (!frame) return fail(frame.error().message);
    if (!frame->drop && limiters_.tx && !limiters_.tx->consume(frame->len)) {
      tx.undo_pop();  // stays in the guest's ring until the limiter's timer
      return;
    }
    if (frame->drop) {
      ++tx_dropped_;  // a frame no tap would take: dropped, like a NIC would
    } else {
      std::vector<iovec> iov = iovecs(*mem_, frame->frame);
      ssize_t n = ::writev(tap_.get(), iov.data(), static_cast<int>(iov.size()));
      if (n < 0) ++tx_dropped_;  // tap full or down: dropped
    }
    if (auto s = tx.add_used(c.head, 0); !s) return fail(s.error().message);
  }
}

bool VirtioNet::release_held_rx() {
  if (!rx_held_) return true;
  if (!limiters_.rx->consume(rx_held_->len - kVirtioNetHdrSize)) return false;
  const HeldFrame f = *rx_held_;
  rx_held_.reset();
  if (auto s = queues_[0].add_used(f.head, f.len); !s) {
    fail(s.error().message);
    return false;
  }
  return true;
}

void VirtioNet::fill_rx() {
  Virtqueue& rx = queues_[0];
  if (!release_held_rx()) return;
  while (tap_readable_) {
    auto next = rx.pop();
    if (!next) return fail(next.error().message);
    if (!*next) return;  // no buffers: the driver's next RX kick brings us back
    const DescriptorChain& c = **next;
    auto space = parse_net_rx(c);
    if (!space) return fail(space.error().message);
    std::vector<iovec> iov = iovecs(*mem_, space->frame);
    ssize_t n = ::readv(tap_.get(), iov.data(), static_cast<int>(iov.size()));
    if (n <= 0) {
      tap_readable_ = false;  // EAGAIN (edge-triggered: the next frame wakes us)
      rx.undo_pop();
      return;
    }
    if (auto s = write_net_rx_header(*mem_, c); !s) return fail(s.error().message);
    const uint32_t used = static_cast<uint32_t>(kVirtioNetHdrSize + n);
    if (limiters_.rx && !limiters_.rx->consume(static_cast<uint64_t>(n))) {
      rx_held_ = HeldFrame{c.head, used};  // at most one frame held: nothing more is read meanwhile
      return;
    }
    if (auto s = rx.add_used(c.head, used); !s) return fail(s.error().message);
  }
}

}  // namespace kindling::vmm
