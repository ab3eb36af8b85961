// One connection of the agent's forward proxy, start to end, on its own
// thread with blocking I/O and deadlines: read Chromium's request head,
// pick the route (direct, or the session's upstream unless bypassed), open
// it (TCP, then the HTTP CONNECT or SOCKS5 handshake), then relay bytes
// through two bounded buffers until either side ends.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/unique_fd.hpp"
#include "common/upstream_proxy.hpp"

namespace kindling::agent {

// `current_upstream` is asked once the request head is in (not at accept:
// Chromium may open a connection early and use it after the session's
// upstream was set); null means direct. `on_failure` hears upstream
// failures only (a direct connection that fails is the page's own error).
void serve_proxy_connection(UniqueFd client,
                            const std::function<std::shared_ptr<const UpstreamProxy>()>& current_upstream,
                            const std::function<void(const std::string&)>& on_failure);

}  // namespace kindling::agent
