#include "agent/cdp_relay.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kindling::agent {

std::size_t RelayBuffer::append(std::string_view bytes) {
  compact();
  std::size_t n = std::min(bytes.size(), kRelayBufferBytes - end_);
  std::memcpy(data_.get() + end_, bytes.data(), n);
  end_ += n;
  return n;
}

void RelayBuffer::compact() {
  if (start_ == 0) return;
  if (start_ == end_) {
    start_ = end_ = 0;
    return;
  }
  // Only when the tail is what limits the next read: keeps copies rare.
  if (end_ == kRelayBufferBytes) {
    std::memmove(data_.get(), data_.get() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
}

long RelayBuffer::read_from(int fd) {
  compact();
  if (end_ == kRelayBufferBytes) return -EAGAIN;
  for (;;) {
    ssize_t n = ::recv(fd, data_.get() + end_, kRelayBufferBytes - end_, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    end_ += static_cast<std::size_t>(n);
    return n;
  }
}

long RelayBuffer::write_to(int fd) {
  for (;;) {
    ssize_t n = ::send(fd, data_.get() + start_, end_ - start_, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    start_ += static_cast<std::size_t>(n);
    if (start_ == end_) start_ = end_ = 0;
    return n;
  }
}

CdpRelay::CdpRelay(UniqueFd host, UniqueFd browser, std::string_view early_bytes)
    : host_(std::move(host)), browser_(std::move(browser)) {
  to_browser_.buffer.append(early_bytes);
}

std::uint32_t CdpRelay::wanted_events(Side side) const {
  if (finished_) return 0;
  if (connecting_) return side == Side::kBrowser ? static_cast<std::uint32_t>(EPOLLOUT) : 0u;
  const Direction& out = side == Side::kHost ? to_browser_ : to_host_;  // this side is its source
  const Direction& in = side == Side::kHost ? to_host_ : to_browser_;   // this side is its sink
  std::uint32_t events = 0;
  if (!out.source_eof && out.buffer.free_space() > 0) events |= EPOLLIN;
  if (!in.buffer.empty()) events |= EPOLLOUT;
  return events;
}

void CdpRelay::finish(std::string reason) {
  if (finished_) return;
  finished_ = true;
  close_reason_ = std::move(reason);
}

void CdpRelay::pump(Direction& d, int source, int sink, std::uint32_t source_events, std::uint32_t sink_events,
                    std::uint64_t& counter) {
  // Drain first so a full buffer makes room for this round's read.
  if (!d.buffer.empty() && (sink_events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    long n = d.buffer.write_to(sink);
    if (n > 0) counter += static_cast<std::uint64_t>(n);
    if (n < 0 && n != -EAGAIN) return finish(std::string("write: ") + std::strerror(static_cast<int>(-n)));
  }
  if (!d.source_eof && d.buffer.free_space() > 0 && (source_events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
    long n = d.buffer.read_from(source);
    if (n == 0) d.source_eof = true;
    if (n < 0 && n != -EAGAIN) return finish(std::string("read: ") + std::strerror(static_cast<int>(-n)));
    // Try to pass it on at once: the common case needs no second wakeup.
    if (n > 0) {
      long w = d.buffer.write_to(sink);
      if (w > 0) counter += static_cast<std::uint64_t>(w);
      if (w < 0 && w != -EAGAIN) return finish(std::string("write: ") + std::strerror(static_cast<int>(-w)));
    }
  }
  if (d.source_eof && d.buffer.empty() && !d.sink_shut) {
    ::shutdown(sink, SHUT_WR);
    d.sink_shut = true;
  }
}

void CdpRelay::on_event(Side side, std::uint32_t events) {
  if (finished_) return;
  if (connecting_) {
    if (side != Side::kBrowser) return;
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(browser_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      static constexpr std::string_view kRefused = "ERR browser-unreachable\n";
      ssize_t ignored = ::send(host_.get(), kRefused.data(), kRefused.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)ignored;
      return finish(std::string("connect to Chromium: ") + std::strerror(err));
    }
    connecting_ = false;
    // "OK\n" goes ahead of anything Chromium says, through the same buffer.
    to_host_.buffer.append("OK\n");
    events = EPOLLOUT;
  }
  const std::uint32_t host_events = side == Side::kHost ? events : 0;
  const std::uint32_t browser_events = side == Side::kBrowser ? events : 0;
  pump(to_browser_, host_.get(), browser_.get(), host_events, browser_events, bytes_to_browser_);
  if (finished_) return;
  pump(to_host_, browser_.get(), host_.get(), browser_events, host_events, bytes_to_host_);
  if (finished_) return;
  if (to_browser_.sink_shut && to_host_.sink_shut) finish("both sides closed");
}

}  // namespace kindling::agent
