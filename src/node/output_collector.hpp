// Collects what machines write to stdout/stderr, keeping only a bounded tail
// of each in host memory.
//
// A machine's output is written by code we do not trust (the agent shares
// its stderr with Chromium, which runs the pages). Writing it to a file on
// the host's disk would let a page fill that disk; so each machine gets a
// pipe, one thread drains every pipe, and only the last `tail_bytes` of each
// are kept — enough to say why a machine failed.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kindling::node {

// The kept tail of one machine's output. Outlives its pipe, so a machine's
// last words can be read after it died.
class OutputTail {
 public:
  explicit OutputTail(std::size_t capacity) : capacity_(capacity) {}
  void append(const char* data, std::size_t size);
  // The last `max_bytes` kept (at most the capacity).
  std::string tail(std::size_t max_bytes) const;
  // Everything ever written, kept or not.
  std::uint64_t total_bytes() const;

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::string text_;  // grows to 2 × capacity before the front is dropped
  std::uint64_t total_ = 0;
};

class OutputCollector {
 public:
  static Result<std::unique_ptr<OutputCollector>> create(std::size_t tail_bytes = 64 * 1024);
  ~OutputCollector();  // stops draining; writers then see EPIPE
  OutputCollector(const OutputCollector&) = delete;
  OutputCollector& operator=(const OutputCollector&) = delete;

  struct Source {
    UniqueFd write_end;  // give to the machine as stdout and stderr
    std::shared_ptr<OutputTail> tail;
  };
  // A new pipe, drained until every holder of its write end closed it.
  Result<Source> open_source();

  // Pipes still open (for tests: nothing may be left once machines are gone).
  std::size_t open_sources() const;

 private:
  OutputCollector(UniqueFd epoll, UniqueFd wake, std::size_t tail_bytes);
  void run();

  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd: tells run() to stop
  const std::size_t tail_bytes_;
  mutable std::mutex mutex_;
  std::unordered_map<int, std::pair<UniqueFd, std::shared_ptr<OutputTail>>> sources_;  // by read fd
  std::thread thread_;
};

}  // namespace kindling::node
