// The protocol between the host (kindling node) and kindling-agent, PID 1 of
// every machine. docs/agent-protocol.md is the prose version of this file.
//
// The agent listens (a Unix socket in a sandbox, vsock in a microVM). Every
// connection the host opens starts with one preamble line naming its kind:
//   "KINDLING/1 CONTROL\n"  length-prefixed JSON frames both ways
//   "KINDLING/1 CDP\n"      the agent answers "OK\n" (or "ERR <why>\n") and
//                           then relays raw bytes to Chromium's loopback
//                           debugging port until either side closes.
// Everything the agent sends is untrusted by the host: frames are bounded and
// every message is validated into a typed struct before anyone acts on it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "common/browser_identity.hpp"
#include "common/upstream_proxy.hpp"
#include "common/result.hpp"

namespace kindling::agent_protocol {

inline constexpr int kVersion = 1;
inline constexpr std::string_view kControlPreamble = "KINDLING/1 CONTROL\n";
inline constexpr std::string_view kCdpPreamble = "KINDLING/1 CDP\n";
inline constexpr std::size_t kMaxPreambleBytes = 64;
inline constexpr std::size_t kMaxReplyLineBytes = 256;
// Control frames carry small JSON; CDP bytes never travel as frames.
inline constexpr std::size_t kMaxFrameBytes = 1 << 20;
inline constexpr std::uint32_t kDefaultVsockPort = 1024;

// ---- frame codec: 4-byte big-endian length, then that many bytes of JSON ----

std::string encode_frame(const nlohmann::json& message);

// Incremental decoder for a byte stream. Bounded: a frame announcing more
// than kMaxFrameBytes poisons the decoder, and the connection must be dropped.
class FrameDecoder {
 public:
  // Appends bytes; returns an error once the stream is known to be invalid.
  Status feed(std::string_view bytes);
  // Next complete frame parsed as a JSON object, if any; error if invalid JSON.
  std::optional<Result<nlohmann::json>> next();

 private:
  std::string buffer_;
  bool poisoned_ = false;
};

// ---- messages, agent -> host ----

struct Hello {
  int protocol = 0;
  std::string agent_version;
};

struct BrowserInfo {
  std::string version;           // "Chrome/156.0.8078.114"
  std::string protocol_version;  // "1.3"
  std::string user_agent;
  std::string websocket_path;  // "/devtools/browser/<uuid>"
};

struct Ready {
  BrowserInfo browser;
  bool chromium_sandbox = true;  // false only if the kernel refused it
  std::string sandbox_note;      // why the sandbox is off, when it is
  double launch_ms = 0;          // agent start -> Chromium exec
  double cdp_ready_ms = 0;       // Chromium exec -> CDP answered
};

struct BrowserExited {
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string reason;
};

struct AgentError {
  std::string message;
};

struct Pong {
  std::uint64_t id = 0;
};

// The answer to ApplyIdentity with the same id: ok, or why Chromium refused.
struct IdentityApplied {
  std::uint64_t id = 0;
  bool ok = false;
  std::string error;  // set when !ok
};

// The answer to SetProxy with the same id.
struct ProxySet {
  std::uint64_t id = 0;
  bool ok = false;
  std::string error;  // set when !ok
};

// The forward proxy could not use the session's upstream (unreachable,
// credentials refused, ...). An event for the session, not a failure of the
// machine; never carries credentials. Not replayed.
struct ProxyFailed {
  std::string message;
};

using AgentMessage = std::variant<Hello, Ready, BrowserExited, AgentError, Pong, IdentityApplied, ProxySet, ProxyFailed>;

// Validates one frame from the agent. Unknown types, missing or wrong-typed
// fields and oversized strings are errors.
Result<AgentMessage> parse_agent_message(const nlohmann::json& frame);
nlohmann::json to_json(const AgentMessage& message);

// ---- messages, host -> agent ----

struct Ping {
  std::uint64_t id = 0;
};
struct Shutdown {};
// Makes the browser look like `identity` for every page it has and every page
// it opens from now on. Answered by IdentityApplied with the same id. Every
// field is validated with the rules of common/browser_identity.hpp, and an
// empty identity is refused: the host skips the step instead.
struct ApplyIdentity {
  std::uint64_t id = 0;
  BrowserIdentity identity;
};

// Points the agent's forward proxy at the session's upstream (validated by
// parse_upstream_proxy, the API's own rules); answered by ProxySet.
struct SetProxy {
  std::uint64_t id = 0;
  UpstreamProxy proxy;
};

// Closes the browser gracefully (CDP Browser.close), so that its profile is
// on disk; the host saves the profile once browser_exited arrives.
struct CloseBrowser {};

using HostMessage = std::variant<Ping, Shutdown, ApplyIdentity, SetProxy, CloseBrowser>;

Result<HostMessage> parse_host_message(const nlohmann::json& frame);
nlohmann::json to_json(const HostMessage& message);

// ---- preamble / reply lines ----

enum class ConnectionKind { kControl, kCdp };
// Parses a complete preamble line (including its '\n').
Result<ConnectionKind> parse_preamble(std::string_view line);

}  // namespace kindling::agent_protocol
