// A thin epoll wrapper: the agent's single-threaded event loop waits here.
// Every fd is removed before it is closed, so a reused fd number never
// inherits a stale registration.
#pragma once

#include <sys/epoll.h>

#include <cstdint>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kindling::agent {

class Poller {
 public:
  static Result<Poller> create();

  void add(int fd, std::uint32_t events, std::uint64_t token);
  void modify(int fd, std::uint32_t events, std::uint64_t token);
  void remove(int fd);
  // epoll_wait; returns the number of events (0 on timeout or EINTR).
  int wait(epoll_event* events, int max_events, int timeout_ms);

 private:
  UniqueFd epoll_;
};

}  // namespace kindling::agent
