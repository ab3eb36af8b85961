// Typed, validated inputs of the control layer. The gateway parses request
// bodies into these; nothing here knows about HTTP or JSON.
#pragma once

#include <cstdint>

#include <string>
#include <vector>

#include <optional>

#include "common/browser_identity.hpp"
#include "common/upstream_proxy.hpp"
#include "control/key_quota.hpp"
#include "node/machine.hpp"

namespace kindling::control {

// A saved profile to start the browser with (docs/profiles.md).
struct SessionProfile {
  std::string id;
  // true: the session's state is saved back when it ends (one such session
  // per profile at a time); false: a read-only copy, never saved.
  bool persist = false;
};

struct CreateSessionOptions {
  int timeout_seconds = 0;       // max lifetime; 0 = server default
  int idle_timeout_seconds = 0;  // no CDP client for this long ends it; 0 = default
  BrowserIdentity identity;      // empty: Chromium's defaults, nothing to apply
  std::optional<UpstreamProxy> proxy;  // none: the agent's forward proxy goes direct
  std::string owner;             // id of the API key that asked (per-key limits)
  // Uploaded extensions to load: name = the extension's id (as parsed),
  // host_dir = its files (filled in from the ExtensionStore by the gateway).
  // Any at all makes the start cold: standby browsers are already running.
  std::vector<node::MachineExtension> extensions;
  // Also makes the start cold: a standby's browser runs on an empty profile.
  std::optional<SessionProfile> profile;
};

struct SessionLimits {
  int default_timeout_seconds = 3600;
  int max_timeout_seconds = 24 * 3600;
  int default_idle_timeout_seconds = 300;
  int max_live_sessions = 16;     // host capacity guard; past it, create answers 503
  // Host memory that must stay available (MemAvailable) for a create to be
  // accepted; 0 = no check. Past it, create answers 503.
  std::uint64_t min_available_memory_bytes = 0;
  KeyQuotaConfig per_key;          // per-API-key session and create-rate limits (429)
  int ready_timeout_seconds = 45;  // machine start until Chromium answers CDP
  int identity_timeout_seconds = 10;  // apply_identity sent until the agent answers
  node::MachineSpec machine;       // limits applied to every machine (id set per session)
};

// WebSocket close codes sent to CDP clients when their session ends.
namespace close_code {
inline constexpr int kServerShutdown = 1001;
inline constexpr int kReleased = 4000;
inline constexpr int kLifetimeExpired = 4001;
inline constexpr int kIdleExpired = 4002;
inline constexpr int kFailed = 4003;
}  // namespace close_code

}  // namespace kindling::control
