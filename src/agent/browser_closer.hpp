// Closes Chromium the way that keeps its profile: CDP Browser.close on a
// browser-level websocket of the agent's own. Chromium then flushes cookies,
// Local Storage and IndexedDB to disk and exits 0 (a SIGTERM exits as fast
// but loses cookies not yet committed: tried on Chromium 156). The host asks
// for it (close_browser) before it saves a session's profile.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "agent/cdp_websocket.hpp"
#include "agent/poller.hpp"
#include "common/result.hpp"

namespace kindling::agent {

class BrowserCloser {
 public:
  BrowserCloser(Poller& poller, std::uint64_t token) : poller_(poller), token_(token) {}
  ~BrowserCloser();

  // Connects and queues Browser.close.
  Status start(std::uint16_t port, const std::string& browser_path);
  // An error: the connection failed before Chromium took the command (once
  // it has, Chromium closing the socket is the expected end).
  Status on_events(std::uint32_t events);

 private:
  void sync_poller();
  void drop();

  Poller& poller_;
  std::uint64_t token_;
  std::optional<CdpWebSocket> socket_;
  std::uint32_t registered_events_ = 0;
  bool acknowledged_ = false;
};

}  // namespace kindling::agent
