#include "node/output_collector.hpp"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace kindling::node {

void OutputTail::append(const char* data, std::size_t size) {
  std::lock_guard lock(mutex_);
  total_ += size;
  if (size >= capacity_) {
    text_.assign(data + size - capacity_, capacity_);
    return;
  }
  text_.append(data, size);
  if (text_.size() > 2 * capacity_) text_.erase(0, text_.size() - capacity_);
}

std::string OutputTail::tail(std::size_t max_bytes) const {
  std::lock_guard lock(mutex_);
  std::size_t n = std::min({max_bytes, capacity_, text_.size()});
  return text_.substr(text_.size() - n);
}

std::uint64_t OutputTail::total_bytes() const {
  std::lock_guard lock(mutex_);
  return total_;
}

Result<std::unique_ptr<OutputCollector>> OutputCollector::create(std::size_t tail_bytes) {
  if (tail_bytes == 0) return make_error("output tail size must be positive", "invalid");
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!epoll.valid() || !wake.valid()) return make_error(std::string("output collector: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake.get();
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &ev) != 0) {
    return make_error(std::string("output collector: ") + std::strerror(errno));
  }
  return std::unique_ptr<OutputCollector>(new OutputCollector(std::move(epoll), std::move(wake), tail_bytes));
}

OutputCollector::OutputCollector(UniqueFd epoll, UniqueFd wake, std::size_t tail_bytes)
    : epoll_(std::move(epoll)), wake_(std::move(wake)), tail_bytes_(tail_bytes), thread_([this] { run(); }) {}

OutputCollector::~OutputCollector() {
  std::uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
  thread_.join();
}

Result<OutputCollector::Source> OutputCollector::open_source() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return make_error(std::string("pipe: ") + std::strerror(errno));
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  // The drain never blocks on one pipe; the writers block only if the
  // drain falls behind by a whole pipe buffer.
  if (::fcntl(read_end.get(), F_SETFL, O_NONBLOCK) != 0) {
    return make_error(std::string("pipe: ") + std::strerror(errno));
  }
  auto tail = std::make_shared<OutputTail>(tail_bytes_);
  const int fd = read_end.get();
  {
    std::lock_guard lock(mutex_);
    sources_.emplace(fd, std::make_pair(std::move(read_end), tail));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;  // EPOLLHUP is always reported
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    std::lock_guard lock(mutex_);
    sources_.erase(fd);
    return make_error(std::string("epoll: ") + std::strerror(err));
  }
  return Source{std::move(write_end), std::move(tail)};
}

std::size_t OutputCollector::open_sources() const {
  std::lock_guard lock(mutex_);
  return sources_.size();
}

void OutputCollector::run() {
  char buffer[16 * 1024];
  epoll_event events[32];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 32, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_.get()) return;
      std::shared_ptr<OutputTail> tail;
      {
        std::lock_guard lock(mutex_);
        auto it = sources_.find(fd);
        if (it == sources_.end()) continue;
        tail = it->second.second;
      }
      // Read a bounded amount per wake-up so one chatty machine cannot
      // starve the others; level-triggered epoll brings us back.
      bool closed = false;
      for (int round = 0; round < 4; ++round) {
        ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got > 0) {
          tail->append(buffer, static_cast<std::size_t>(got));
          continue;
        }
        if (got < 0 && errno == EINTR) continue;
        closed = got == 0 || errno != EAGAIN;
        break;
      }
      if (closed) {
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
        std::lock_guard lock(mutex_);
        sources_.erase(fd);  // closes the read end
      }
    }
  }
}

}  // namespace kindling::node
