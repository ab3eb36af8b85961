// Upstream-proxy failures on their way from the forward proxy's connection
// threads to the agent's event loop, which sends them to the host as
// proxy_failed. Bounded and deduplicated: a page that retries a dead proxy
// in a loop yields one message per kRepeatAfter, not a flood.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/unique_fd.hpp"

namespace kindling::agent {

class ProxyFailureQueue {
 public:
  static constexpr std::size_t kMaxQueued = 16;
  static constexpr std::size_t kMaxRemembered = 64;
  static constexpr auto kRepeatAfter = std::chrono::seconds(10);

  ProxyFailureQueue() : wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  int fd() const { return wake_.get(); }

  // Any thread.
  void push(const std::string& message) {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    auto it = last_sent_.find(message);
    if (it != last_sent_.end() && now - it->second < kRepeatAfter) return;
    if (queue_.size() >= kMaxQueued) return;
    if (last_sent_.size() >= kMaxRemembered) last_sent_.clear();
    last_sent_[message] = now;
    queue_.push_back(message);
    std::uint64_t one = 1;
    ssize_t ignored = ::write(wake_.get(), &one, sizeof one);
    (void)ignored;
  }

  // The event loop, when fd() is readable.
  std::vector<std::string> drain() {
    std::uint64_t count;
    ssize_t ignored = ::read(wake_.get(), &count, sizeof count);
    (void)ignored;
    std::lock_guard lock(mutex_);
    std::vector<std::string> out(queue_.begin(), queue_.end());
    queue_.clear();
    return out;
  }

 private:
  UniqueFd wake_;
  std::mutex mutex_;
  std::deque<std::string> queue_;
  std::map<std::string, std::chrono::steady_clock::time_point> last_sent_;
};

}  // namespace kindling::agent
