#include "vmm/devices/event_loop.hpp"

#include <pthread.h>
#include "vmm/logger.hpp"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace kindling::vmm {

Result<std::unique_ptr<DeviceEventLoop>> DeviceEventLoop::create() {
  std::unique_ptr<DeviceEventLoop> loop(new DeviceEventLoop());
  loop->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!loop->epoll_.valid()) return make_error(fmt::format("epoll_create1: {}", std::strerror(errno)));
  loop->stop_event_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!loop->stop_event_.valid()) return make_error(fmt::format("eventfd: {}", std::strerror(errno)));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = loop->stop_event_.get();
  if (::epoll_ctl(loop->epoll_.get(), EPOLL_CTL_ADD, ev.data.fd, &ev) != 0) {
    return make_error(fmt::format("epoll_ctl: {}", std::strerror(errno)));
  }
  return loop;
}

DeviceEventLoop::~DeviceEventLoop() { stop(); }

Status DeviceEventLoop::add(int fd, uint32_t events, Callback cb) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return make_error(fmt::format("epoll_ctl(ADD {}): {}", fd, std::strerror(errno)));
  }
  callbacks_[fd] = std::make_shared<Callback>(std::move(cb));
  return ok_status();
}

void DeviceEventLoop::remove(int fd) {
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  callbacks_.erase(fd);
}

void DeviceEventLoop::start(std::function<void()> thread_setup) {
  thread_setup_ = std::move(thread_setup);
  thread_ = std::thread([this] { run(); });
}

void DeviceEventLoop::stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_event_.get(), &one, sizeof(one));
  thread_.join();
}

void DeviceEventLoop::run() {
  pthread_setname_np(pthread_self(), "devices");
  if (thread_setup_) thread_setup_();
  epoll_event events[32];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 32, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      log_error("device loop: epoll_wait: {}", std::strerror(errno));
      return;
    }
    std::lock_guard dispatching(dispatch_mu_);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == stop_event_.get()) return;
      auto it = callbacks_.find(fd);
      if (it == callbacks_.end()) continue;  // removed by an earlier callback of this round
      auto cb = it->second;                  // keeps it alive if the callback removes itself
      (*cb)(events[i].events);
    }
  }
}

}  // namespace kindling::vmm
