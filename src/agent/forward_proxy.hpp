// The agent's forward proxy: Chromium is always launched with
// --proxy-server pointing here (127.0.0.1, a port the kernel picks), so a
// session's upstream proxy is a setting of this object, not of the browser:
// a standby Chromium never relaunches to change it. With no upstream it
// connects directly (the machine's network policy still applies).
//
// Threads, not the agent's event loop: each accepted connection gets one
// thread doing blocking I/O with deadlines (at most kMaxProxyConnections at
// once, two kProxyBufferBytes buffers each), which keeps the SOCKS5 and
// CONNECT handshakes straight-line code. The loop only hears about
// upstream failures, through the failure sink (called from those threads).
//
// Everything a connection sends is hostile (a page steers Chromium): heads
// are bounded, targets on the machine itself are refused, and upstream
// credentials never appear in a log line, an error page or an event.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "common/upstream_proxy.hpp"

namespace kindling::agent {

inline constexpr int kMaxProxyConnections = 256;
inline constexpr std::size_t kProxyBufferBytes = 64 * 1024;

class ForwardProxy {
 public:
  // Called from connection threads with a sentence naming an upstream
  // failure (no credentials in it). Must be thread-safe and quick.
  using FailureSink = std::function<void(const std::string&)>;

  // Binds 127.0.0.1:0 and starts accepting. Call after the agent blocked its
  // signals: the threads inherit the mask, so signals stay on the signalfd.
  static Result<std::unique_ptr<ForwardProxy>> start(FailureSink sink);
  ~ForwardProxy();

  std::uint16_t port() const { return port_; }
  // Applies to every request whose head arrives from now on; nullopt: direct.
  void set_upstream(std::optional<UpstreamProxy> upstream);

  struct Shared;  // what outlives this object in detached threads

 private:
  ForwardProxy() = default;
  std::shared_ptr<Shared> shared_;
  std::uint16_t port_ = 0;
};

}  // namespace kindling::agent
