// One CDP connection: raw bytes between the host's stream and a fresh TCP
// connection to Chromium's loopback debugging port. The relay never looks at
// the bytes (HTTP discovery and websockets pass alike). Each direction has a
// fixed buffer: when it is full the relay stops reading that side, so a slow
// reader slows its writer instead of growing memory. A read EOF is passed on
// as shutdown(SHUT_WR) once the buffer has drained (half-close).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/unique_fd.hpp"

namespace kindling::agent {

inline constexpr std::size_t kRelayBufferBytes = 256 * 1024;

class RelayBuffer {
 public:
  RelayBuffer() : data_(new char[kRelayBufferBytes]) {}
  std::size_t size() const { return end_ - start_; }
  std::size_t free_space() const { return kRelayBufferBytes - size(); }
  bool empty() const { return start_ == end_; }
  // Copies as much of `bytes` as fits; returns how much.
  std::size_t append(std::string_view bytes);
  // One read(2)/recv into free space: >0 bytes, 0 EOF, <0 -errno (-EAGAIN when none).
  long read_from(int fd);
  // One send(2) from the front: >0 bytes, <0 -errno.
  long write_to(int fd);

 private:
  void compact();
  std::unique_ptr<char[]> data_;
  std::size_t start_ = 0, end_ = 0;
};

class CdpRelay {
 public:
  enum class Side { kHost, kBrowser };

  // `browser` is a socket whose non-blocking connect is in progress; the host
  // is answered "OK\n" once it completes. `early_bytes`: what the host sent
  // right after its preamble.
  CdpRelay(UniqueFd host, UniqueFd browser, std::string_view early_bytes);

  int fd(Side side) const { return side == Side::kHost ? host_.get() : browser_.get(); }
  std::uint32_t wanted_events(Side side) const;
  void on_event(Side side, std::uint32_t events);
  bool finished() const { return finished_; }
  const std::string& close_reason() const { return close_reason_; }
  std::uint64_t bytes_to_browser() const { return bytes_to_browser_; }
  std::uint64_t bytes_to_host() const { return bytes_to_host_; }

 private:
  struct Direction {
    RelayBuffer buffer;
    bool source_eof = false;
    bool sink_shut = false;
  };
  void finish(std::string reason);
  void pump(Direction& d, int source, int sink, std::uint32_t source_events, std::uint32_t sink_events,
            std::uint64_t& counter);

  UniqueFd host_, browser_;
  bool connecting_ = true;
  Direction to_browser_, to_host_;
  bool finished_ = false;
  std::string close_reason_;
  std::uint64_t bytes_to_browser_ = 0, bytes_to_host_ = 0;
};

}  // namespace kindling::agent
