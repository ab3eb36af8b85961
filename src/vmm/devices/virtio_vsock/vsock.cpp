#include "vmm/devices/virtio_vsock/vsock.hpp"

#include <fmt/format.h>
#include "vmm/logger.hpp"
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace kindling::vmm {
namespace {

constexpr uint32_t kSocketEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
constexpr size_t kMaxConnectLine = 32;

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return make_error(fmt::format("Unix socket path too long: {}", path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

std::vector<iovec> iovecs(const GuestMemory& mem, const std::vector<GuestBuffer>& bufs) {
  std::vector<iovec> out;
  for (const GuestBuffer& b : bufs) {
    auto s = mem.slice(b.addr, b.len);  // the walker checked them; this cannot fail
    if (s) out.push_back({s->data(), s->size()});
  }
  return out;
}

}  // namespace

Result<std::shared_ptr<VirtioVsock>> VirtioVsock::create(uint32_t guest_cid, std::string uds_path) {
  KINDLING_TRY(addr, unix_address(uds_path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return make_error(fmt::format("vsock: socket: {}", std::strerror(errno)));
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return make_error(fmt::format("Cannot create the vsock Unix socket {}: {}", uds_path, std::strerror(errno)));
  }
  if (::listen(fd.get(), 64) != 0) return make_error(fmt::format("vsock: listen: {}", std::strerror(errno)));
  return std::shared_ptr<VirtioVsock>(new VirtioVsock(guest_cid, std::move(uds_path), std::move(fd)));
}

VirtioVsock::VirtioVsock(uint32_t guest_cid, std::string uds_path, UniqueFd listener)
    : guest_cid_(guest_cid), uds_path_(std::move(uds_path)), listener_(std::move(listener)) {}

VirtioVsock::~VirtioVsock() { ::unlink(uds_path_.c_str()); }

void VirtioVsock::read_config(uint64_t offset, std::span<uint8_t> data) const {
  uint8_t cfg[8];
  uint64_t cid = guest_cid_;
  std::memcpy(cfg, &cid, 8);
  read_config_bytes(cfg, offset, data);
}

Status VirtioVsock::start_backend(DeviceEventLoop& loop) {
  loop_ = &loop;
  return loop.add(listener_.get(), EPOLLIN, [this](uint32_t) {
    std::lock_guard lock(mu_);
    on_listener();
  });
}

void VirtioVsock::on_listener() {
  for (;;) {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) return;
    if (!usable() || pending_host_.size() + conns_.size() >= kMaxConnections) continue;  // closes it
    const int raw = fd.get();
    if (!loop_->add(raw, kSocketEvents, [this, raw](uint32_t ev) {
          std::lock_guard lock(mu_);
          on_socket(raw, ev);
        })) {
      continue;
    }
    pending_host_[raw] = PendingHost{std::move(fd), {}};
  }
}

void VirtioVsock::on_socket(int fd, uint32_t events) {
  if (pending_host_.count(fd)) {
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_connect_line(fd);
  } else if (auto it = by_fd_.find(fd); it != by_fd_.end()) {
    Connection& c = conns_.at(it->second);
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c.readable = true;
    if (events & EPOLLOUT) flush_pending(c);
  } else {
    return;  // closed already (e.g. by a reset)
  }
  if (usable()) {
    fill_rx();
    interrupt_if_needed(0);
  }
}

void VirtioVsock::on_connect_line(int fd) {
  PendingHost& p = pending_host_.at(fd);
  auto drop = [&] {
    loop_->remove(fd);
    pending_host_.erase(fd);
  };
  // Byte by byte, so nothing the client sends after the line is consumed here.
  for (;;) {
    char ch;
    ssize_t n = ::recv(fd, &ch, 1, MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) return drop();
    if (ch == '\n') break;
    p.line.push_back(ch);
    if (p.line.size() > kMaxConnectLine) return drop();
  }
  uint32_t port = 0;
  const std::string& line = p.line;
  auto [end, ec] = line.rfind("CONNECT ", 0) == 0 ? std::from_chars(line.data() + 8, line.data() + line.size(), port)
                                                  : std::from_chars_result{line.data(), std::errc::invalid_argument};
  if (ec != std::errc() || end != line.data() + line.size() || !usable()) return drop();
  uint32_t local = next_host_port_;
  while (conns_.count(key(local, port))) local = local + 1 < kFirstHostPort ? kFirstHostPort : local + 1;
  next_host_port_ = local + 1 < kFirstHostPort ? kFirstHostPort : local + 1;
  Connection c;
  c.sock = std::move(p.sock);
  c.local_port = local;
  c.peer_port = port;
  pending_host_.erase(fd);
  by_fd_[fd] = key(local, port);
  auto& placed = conns_[key(local, port)] = std::move(c);
  enqueue(local, port, kVsockOpRequest, 0, &placed);
}

void VirtioVsock::process_queue(uint16_t queue_index) {
  (void)queue_index;  // any notification may unblock either direction
  // The event queue is used once per restore: any kick (restore kicks every
  // queue) retries until the driver has given it a buffer.
  if (reset_event_pending_) send_reset_event();
  if (!usable()) return;
  for (int round = 0; round < 4 && usable(); ++round) {
    process_tx();
    if (!usable()) return;
    fill_rx();
    if (!tx_stalled_) break;
  }
  if (usable()) {
    interrupt_if_needed(0);
    interrupt_if_needed(1);
  }
}

void VirtioVsock::process_tx() {
  Virtqueue& tx = queues_[1];
  tx_stalled_ = false;
  for (;;) {
    // Each TX packet may need one control packet back: stop reading while
    // too many wait, so a guest cannot make this queue grow without bound.
    if (control_.size() >= kMaxControlPackets) {
      tx_stalled_ = true;
      return;
    }
    auto next = tx.pop();
    if (!next) return fail(next.error().message);
    if (!*next) return;
    auto pkt = parse_vsock_tx(*mem_, **next);
    if (!pkt) return fail(pkt.error().message);
    handle_packet(*pkt);
    if (auto s = tx.add_used((*next)->head, 0); !s) return fail(s.error().message);
  }
}

void VirtioVsock::handle_packet(const VsockPacket& p) {
  const VsockHeader& h = p.hdr;
  auto reply_rst = [&] {
    if (h.op != kVsockOpRst) enqueue(h.dst_port, h.src_port, kVsockOpRst, 0, nullptr);
  };
  if (h.src_cid != guest_cid_ || h.dst_cid != kVsockHostCid || h.type != kVsockTypeStream) return reply_rst();
  const uint64_t k = key(h.dst_port, h.src_port);
  auto it = conns_.find(k);
  Connection* c = it == conns_.end() ? nullptr : &it->second;
  if (c) {
    c->peer_buf_alloc = h.buf_alloc;
    c->peer_fwd_cnt = h.fwd_cnt;
  }
  switch (h.op) {
    case kVsockOpRequest: {
      if (c || conns_.size() + pending_host_.size() >= kMaxConnections || !loop_) return reply_rst();
      auto addr = unix_address(uds_path_ + "_" + std::to_string(h.dst_port));
      if (!addr) return reply_rst();
      UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd.valid() || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
        log_debug("vsock: guest port {} -> {}_{}: {}", uint32_t{h.src_port}, uds_path_, uint32_t{h.dst_port}, std::strerror(errno));
        return reply_rst();
      }
      const int raw = fd.get();
      if (!loop_->add(raw, kSocketEvents, [this, raw](uint32_t ev) {
            std::lock_guard lock(mu_);
            on_socket(raw, ev);
          })) {
        return reply_rst();
      }
      Connection n;
      n.sock = std::move(fd);
      n.local_port = h.dst_port;
      n.peer_port = h.src_port;
      n.established = true;
      n.peer_buf_alloc = h.buf_alloc;
      n.peer_fwd_cnt = h.fwd_cnt;
      by_fd_[raw] = k;
      auto& placed = conns_[k] = std::move(n);
      return enqueue(h.dst_port, h.src_port, kVsockOpResponse, 0, &placed);
    }
    case kVsockOpResponse: {
      if (!c || c->established) {
        if (c) close_connection(k, false);
        return reply_rst();
      }
      c->established = true;
      c->readable = true;  // the client may have written already
      const std::string ok = fmt::format("OK {}\n", c->local_port);
      ssize_t n = ::send(c->sock.get(), ok.data(), ok.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n != static_cast<ssize_t>(ok.size())) close_connection(k, true);  // a fresh socket that cannot take 20 bytes is gone
      return;
    }
    case kVsockOpRw:
      if (!c || !c->established || c->guest_done_sending) {
        if (c) return close_connection(k, true);
        return reply_rst();
      }
      return forward_to_host(*c, p);
    case kVsockOpCreditUpdate: return;  // credit taken above; fill_rx() uses it
    case kVsockOpCreditRequest:
      if (!c) return reply_rst();
      return enqueue(c->local_port, c->peer_port, kVsockOpCreditUpdate, 0, c);
    case kVsockOpShutdown:
      if (!c) return;
      if (h.flags & kVsockShutdownSend) c->guest_done_sending = true;
      if ((h.flags & (kVsockShutdownSend | kVsockShutdownRcv)) == (kVsockShutdownSend | kVsockShutdownRcv)) {
        c->close_after_flush = true;
      }
      return flush_pending(*c);
    case kVsockOpRst:
      if (c) close_connection(k, false);
      return;
    default: return reply_rst();
  }
}

void VirtioVsock::forward_to_host(Connection& c, const VsockPacket& p) {
  if (c.pending_out.size() + p.hdr.len > kBufAlloc) {
    log_warn("vsock: guest port {} overran its credit; connection reset", c.peer_port);
    return close_connection(key(c.local_port, c.peer_port), true);
  }
  std::vector<iovec> iov = iovecs(*mem_, p.payload);
  size_t written = 0;
  if (c.pending_out.empty() && !iov.empty()) {
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    ssize_t n = ::sendmsg(c.sock.get(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) return close_connection(key(c.local_port, c.peer_port), true);
    written = n > 0 ? static_cast<size_t>(n) : 0;
  }
  c.fwd_cnt += static_cast<uint32_t>(written);
  // The rest waits for EPOLLOUT, bounded by kBufAlloc (checked above).
  size_t skip = written;
  for (const iovec& v : iov) {
    if (skip >= v.iov_len) {
      skip -= v.iov_len;
      continue;
    }
    c.pending_out.append(static_cast<const char*>(v.iov_base) + skip, v.iov_len - skip);
    skip = 0;
  }
  maybe_credit_update(c);
}

void VirtioVsock::flush_pending(Connection& c) {
  const uint64_t k = key(c.local_port, c.peer_port);
  while (!c.pending_out.empty()) {
    ssize_t n = ::send(c.sock.get(), c.pending_out.data(), c.pending_out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) return close_connection(k, true);
    c.pending_out.erase(0, static_cast<size_t>(n));
    c.fwd_cnt += static_cast<uint32_t>(n);
  }
  maybe_credit_update(c);
  if (c.close_after_flush) return close_connection(k, true);
  if (c.guest_done_sending) ::shutdown(c.sock.get(), SHUT_WR);
}

void VirtioVsock::maybe_credit_update(Connection& c) {
  if (c.fwd_cnt - c.fwd_cnt_advertised >= kBufAlloc / 4) enqueue(c.local_port, c.peer_port, kVsockOpCreditUpdate, 0, &c);
}

void VirtioVsock::close_connection(uint64_t k, bool send_rst) {
  auto it = conns_.find(k);
  if (it == conns_.end()) return;
  const int fd = it->second.sock.get();
  if (loop_) loop_->remove(fd);
  by_fd_.erase(fd);
  if (send_rst) enqueue(it->second.local_port, it->second.peer_port, kVsockOpRst, 0, nullptr);
  conns_.erase(it);
}

void VirtioVsock::enqueue(uint32_t local, uint32_t peer, uint16_t op, uint32_t flags, Connection* c) {
  VsockHeader h{};
  h.src_cid = kVsockHostCid;
  h.dst_cid = guest_cid_;
  h.src_port = local;
  h.dst_port = peer;
  h.type = kVsockTypeStream;
  h.op = op;
  h.flags = flags;
  h.buf_alloc = kBufAlloc;
  h.fwd_cnt = c ? c->fwd_cnt : 0;
  if (c) c->fwd_cnt_advertised = c->fwd_cnt;
  control_.push_back(h);
}

VirtioVsock::Connection* VirtioVsock::next_sendable() {
  if (conns_.empty()) return nullptr;
  // Round robin from the connection after the last one served.
  auto start = conns_.upper_bound(rr_cursor_);
  for (int pass = 0; pass < 2; ++pass) {
    for (auto it = pass == 0 ? start : conns_.begin(); it != (pass == 0 ? conns_.end() : start); ++it) {
      Connection& c = it->second;
      const uint32_t in_flight = c.sent_to_guest - c.peer_fwd_cnt;
      if (c.established && c.readable && !c.host_eof && c.peer_buf_alloc > in_flight) {
        rr_cursor_ = it->first;
        return &c;
      }
    }
  }
  return nullptr;
}

void VirtioVsock::fill_rx() {
  Virtqueue& rx = queues_[0];
  for (;;) {
    Connection* c = control_.empty() ? next_sendable() : nullptr;
    if (control_.empty() && !c) return;
    auto next = rx.pop();
    if (!next) return fail(next.error().message);
    if (!*next) return;  // no RX buffers: the driver's next notification brings us back
    const DescriptorChain& chain = **next;
    VsockHeader h;
    uint32_t len = 0;
    if (!control_.empty()) {
      h = control_.front();
      control_.pop_front();
    } else {
      const uint32_t credit = c->peer_buf_alloc - (c->sent_to_guest - c->peer_fwd_cnt);
      std::vector<iovec> iov = iovecs(*mem_, vsock_rx_payload_space(chain, std::min(credit, kVsockMaxPayload)));
      if (iov.empty()) return fail("vsock RX buffer has no room for data");
      msghdr msg{};
      msg.msg_iov = iov.data();
      msg.msg_iovlen = iov.size();
      ssize_t n = ::recvmsg(c->sock.get(), &msg, MSG_DONTWAIT);
      if (n < 0 && errno == EAGAIN) {
        c->readable = false;
        rx.undo_pop();
        continue;
      }
      h = {};
      h.src_cid = kVsockHostCid;
      h.dst_cid = guest_cid_;
      h.src_port = c->local_port;
      h.dst_port = c->peer_port;
      h.type = kVsockTypeStream;
      h.buf_alloc = kBufAlloc;
      h.fwd_cnt = c->fwd_cnt;
      c->fwd_cnt_advertised = c->fwd_cnt;
      if (n > 0) {
        h.op = kVsockOpRw;
        h.len = len = static_cast<uint32_t>(n);
        c->sent_to_guest += len;
      } else {
        // End of stream (or an error): the host side will send no more.
        h.op = kVsockOpShutdown;
        h.flags = kVsockShutdownSend | kVsockShutdownRcv;
        c->host_eof = true;
        c->readable = false;
      }
    }
    if (auto s = write_vsock_header(*mem_, chain, h); !s) return fail(s.error().message);
    if (auto s = rx.add_used(chain.head, static_cast<uint32_t>(sizeof(VsockHeader)) + len); !s) return fail(s.error().message);
  }
}

// virtio 1.2, 5.10.6.7: struct virtio_vsock_event { le32 id; }, id 0 =
// VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, written into the driver's next
// event-queue buffer. The guest then drops every connection and re-reads
// the guest CID.
void VirtioVsock::send_reset_event() {
  Virtqueue& ev = queues_[2];
  auto next = ev.pop();
  if (!next) return fail(next.error().message);
  if (!*next) return;  // no event buffer yet: the driver's next kick brings us back
  const DescriptorChain& c = **next;
  constexpr uint32_t kTransportReset = 0;
  if (c.writable_bytes < sizeof(kTransportReset)) return fail("vsock event buffer is shorter than an event");
  uint8_t bytes[sizeof(kTransportReset)];
  std::memcpy(bytes, &kTransportReset, sizeof(bytes));
  size_t done = 0;
  for (const GuestBuffer& b : c.writable) {
    const size_t n = std::min<size_t>(b.len, sizeof(bytes) - done);
    auto dst = mem_->slice(b.addr, n);  // the walker checked the buffer
    if (!dst) return fail("vsock event buffer is outside guest memory");
    std::memcpy(dst->data(), bytes + done, n);
    done += n;
    if (done == sizeof(bytes)) break;
  }
  if (auto s = ev.add_used(c.head, sizeof(bytes)); !s) return fail(s.error().message);
  reset_event_pending_ = false;
  log_info("vsock: sent TRANSPORT_RESET to the guest (connections are not restored)");
  interrupt_if_needed(2);
}

void VirtioVsock::on_reset() {
  // Runs on a vCPU thread: close()ing is enough, epoll drops closed fds and
  // the loop's stale entries find nothing in by_fd_/pending_host_.
  conns_.clear();
  by_fd_.clear();
  pending_host_.clear();
  control_.clear();
  tx_stalled_ = false;
  reset_event_pending_ = false;
}

}  // namespace kindling::vmm
