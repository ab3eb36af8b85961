#include "agent/poller.hpp"

#include <cerrno>
#include <cstring>

#include "agent/agent_log.hpp"

namespace kindling::agent {

Result<Poller> Poller::create() {
  Poller poller;
  poller.epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!poller.epoll_.valid()) return make_error(std::string("epoll_create1: ") + std::strerror(errno));
  return poller;
}

void Poller::add(int fd, std::uint32_t events, std::uint64_t token) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
    log_error(std::string("epoll add: ") + std::strerror(errno));
}

void Poller::modify(int fd, std::uint32_t events, std::uint64_t token) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0)
    log_error(std::string("epoll modify: ") + std::strerror(errno));
}

void Poller::remove(int fd) {
  if (fd >= 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

int Poller::wait(epoll_event* events, int max_events, int timeout_ms) {
  int n = ::epoll_wait(epoll_.get(), events, max_events, timeout_ms);
  if (n < 0) {
    if (errno != EINTR) log_error(std::string("epoll_wait: ") + std::strerror(errno));
    return 0;
  }
  return n;
}

}  // namespace kindling::agent
