#include "control/session_record.hpp"

#include "common/clock.hpp"

namespace kindling::control {

std::string_view to_string(SessionStatus s) {
  switch (s) {
    case SessionStatus::kStarting: return "starting";
    case SessionStatus::kReady: return "ready";
    case SessionStatus::kReleased: return "released";
    case SessionStatus::kExpired: return "expired";
    case SessionStatus::kFailed: return "failed";
  }
  return "failed";
}

std::optional<SessionStatus> parse_status(std::string_view s) {
  for (auto st : {SessionStatus::kStarting, SessionStatus::kReady, SessionStatus::kReleased, SessionStatus::kExpired,
                  SessionStatus::kFailed})
    if (to_string(st) == s) return st;
  return std::nullopt;
}

nlohmann::json identity_to_json(const BrowserIdentity& i) {
  nlohmann::json j = nlohmann::json::object();
  if (i.viewport) j["viewport"] = {{"width", i.viewport->width}, {"height", i.viewport->height}};
  if (i.user_agent) j["userAgent"] = *i.user_agent;
  if (i.locale) j["locale"] = *i.locale;
  if (i.timezone) j["timezone"] = *i.timezone;
  return j;
}

BrowserIdentity identity_from_json(const nlohmann::json& j) {
  BrowserIdentity i;
  if (!j.is_object()) return i;
  if (auto v = j.find("viewport"); v != j.end() && v->is_object())
    i.viewport = Viewport{v->value("width", 0), v->value("height", 0)};
  for (auto [key, field] : {std::pair{"userAgent", &i.user_agent}, std::pair{"locale", &i.locale},
                            std::pair{"timezone", &i.timezone}})
    if (auto it = j.find(key); it != j.end() && it->is_string()) *field = it->get<std::string>();
  return i;
}

nlohmann::json to_api_json(const SessionEvent& e) {
  return {{"seq", e.seq}, {"at", iso8601_utc(e.at_ms)}, {"type", e.type}, {"detail", e.detail}};
}

nlohmann::json to_api_json(const SessionRecord& r) {
  using nlohmann::json;
  json timings = json::object();
  if (r.timings.queued_ms) timings["queuedMs"] = *r.timings.queued_ms;
  if (r.timings.machine_acquired_ms) timings["machineAcquiredMs"] = *r.timings.machine_acquired_ms;
  if (r.timings.identity_applied_ms) timings["identityAppliedMs"] = *r.timings.identity_applied_ms;
  if (r.timings.ready_ms) timings["readyMs"] = *r.timings.ready_ms;
  if (r.timings.ready_ms) {
    timings["agentLaunchMs"] = r.timings.agent_launch_ms;
    timings["agentCdpReadyMs"] = r.timings.agent_cdp_ready_ms;
  }
  json j = {
      {"id", r.id},
      {"status", to_string(r.status)},
      {"createdAt", iso8601_utc(r.created_at_ms)},
      {"expiresAt", iso8601_utc(r.expires_at_ms)},
      {"timeoutSeconds", r.timeout_seconds},
      {"idleTimeoutSeconds", r.idle_timeout_seconds},
      {"backend", r.backend},
      {"machineId", r.machine_id},
      {"machinePid", r.machine_pid},
      {"start", r.start_path},
      {"timings", timings},
      {"identity", identity_to_json(r.identity)},
      {"proxy", r.proxy},
      {"profile", r.profile},
      {"extensions", r.extensions},
  };
  j["endedAt"] = r.ended_at_ms ? json(iso8601_utc(*r.ended_at_ms)) : json(nullptr);
  if (!r.end_reason.empty()) j["endReason"] = r.end_reason;
  j["chromiumSandbox"] = r.chromium_sandbox ? json(*r.chromium_sandbox) : json(nullptr);
  if (!r.sandbox_note.empty()) j["sandboxNote"] = r.sandbox_note;
  if (!r.browser_version.empty()) j["browserVersion"] = r.browser_version;
  if (r.network) j["network"] = {{"rxBytes", r.network->rx_bytes}, {"txBytes", r.network->tx_bytes}};
  return j;
}

}  // namespace kindling::control
