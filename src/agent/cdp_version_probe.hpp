// Readiness: Chromium counts as ready only once its DevTools HTTP server
// answers GET /json/version. This is that one request, non-blocking, so the
// agent's event loop keeps serving the host while Chromium starts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/agent_protocol.hpp"
#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kindling::agent {

inline constexpr std::size_t kMaxVersionResponseBytes = 64 * 1024;

// Parses a raw HTTP/1.1 response to GET /json/version. nullopt: incomplete so
// far; an error: not a usable answer (status, JSON, fields).
std::optional<Result<agent_protocol::BrowserInfo>> parse_json_version_response(std::string_view raw,
                                                                                bool at_eof);

class CdpVersionProbe {
 public:
  // Starts a non-blocking connect to 127.0.0.1:port.
  static Result<CdpVersionProbe> start(std::uint16_t port);

  int fd() const { return socket_.get(); }
  // EPOLLIN/EPOLLOUT this probe waits for now.
  std::uint32_t wanted_events() const;
  // Advances on readiness. nullopt: still waiting; otherwise the outcome.
  std::optional<Result<agent_protocol::BrowserInfo>> on_ready();

 private:
  UniqueFd socket_;
  bool request_sent_ = false;
  std::string response_;
};

}  // namespace kindling::agent
