// What Kindling remembers about a session: the durable record (SQLite) and
// the JSON the API shows for it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/browser_identity.hpp"

namespace kindling::control {

enum class SessionStatus { kStarting, kReady, kReleased, kExpired, kFailed };

std::string_view to_string(SessionStatus s);
std::optional<SessionStatus> parse_status(std::string_view s);
inline bool is_live(SessionStatus s) { return s == SessionStatus::kStarting || s == SessionStatus::kReady; }

// Milestones of a session's start, in milliseconds since the create request
// arrived. Absent until reached.
struct StartTimings {
  std::optional<double> queued_ms;            // request parsed, work begins
  std::optional<double> machine_acquired_ms;  // machine taken from the pool, or its process started
  std::optional<double> identity_applied_ms;  // the session's identity is on the browser
  std::optional<double> ready_ms;             // agent reported CDP answering
  double agent_launch_ms = 0;                 // inside the machine: agent start -> Chromium exec
  double agent_cdp_ready_ms = 0;              // inside the machine: Chromium exec -> CDP answered
};

struct SessionRecord {
  std::string id;
  SessionStatus status = SessionStatus::kStarting;
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  std::optional<std::int64_t> ended_at_ms;
  int timeout_seconds = 0;
  int idle_timeout_seconds = 0;
  std::string end_reason;
  std::string backend;
  std::string machine_id;
  pid_t machine_pid = 0;
  std::optional<bool> chromium_sandbox;
  std::string sandbox_note;
  std::string browser_version;
  std::string start_path = "cold";  // "cold" | "warm"
  StartTimings timings;
  BrowserIdentity identity;  // what the session's browser was made to look like
  // The upstream proxy as shown and stored: to_public_json() of it ({server,
  // bypass, authenticated}), never the credentials; null when none.
  nlohmann::json proxy;
  // {id, persist} of the saved profile it started from; null when none.
  nlohmann::json profile;
  std::vector<std::string> extensions;  // ids of the uploaded extensions loaded
  // Bytes the machine's network interface moved, filled in for live
  // sessions on read (not stored); none when machines have no network.
  struct NetworkUsage {
    std::uint64_t rx_bytes = 0;
    std::uint64_t tx_bytes = 0;
  };
  std::optional<NetworkUsage> network;
};

// One thing that happened to a session, for GET /v1/sessions/{id}/events.
struct SessionEvent {
  std::int64_t seq = 0;    // 1, 2, ... per session
  std::int64_t at_ms = 0;  // unix time
  std::string type;        // created, ready, connected, disconnected, crashed, released, expired, failed
  std::string detail;
};
nlohmann::json to_api_json(const SessionEvent& e);

// The API's view of a record (without URLs, which the gateway adds).
nlohmann::json to_api_json(const SessionRecord& r);

// {"viewport":{"width","height"},"userAgent","locale","timezone"}, only the
// fields that are set; and back (lenient: it reads our own database).
nlohmann::json identity_to_json(const BrowserIdentity& identity);
BrowserIdentity identity_from_json(const nlohmann::json& j);

}  // namespace kindling::control
