// Starting Chromium: its profile directory, its command line, the fork/exec
// that drops to the browser uid/gid, and what it tells us at startup
// (DevToolsActivePort, or why its sandbox could not start).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/agent_config.hpp"
#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kindling::agent {

// Creates `path` (mode 0700, owned by uid:gid); an existing directory must be
// empty, so a session never inherits another session's profile.
Status prepare_user_data_dir(const std::string& path, uid_t uid, gid_t gid);

// The session's downloads area: <parent of the user-data-dir>/downloads
// (/home/browser/downloads in a machine), owned by the browser user.
std::string downloads_dir_for(const std::string& user_data_dir);
// Makes the downloads area (and the uploads one beside it) and points the fresh profile's preferences at it,
// so every download a page triggers lands there with no client setup (the
// host lists and serves it: GET /v1/sessions/{id}/files).
Status prepare_downloads(const std::string& user_data_dir, uid_t uid, gid_t gid);

// The full argv. `sandbox` false adds --no-sandbox: only after the kernel
// refused Chromium's sandbox.
std::vector<std::string> chromium_argv(const AgentConfig& config, bool sandbox);

struct ChromiumProcess {
  pid_t pid = -1;         // also its process group id (it calls setsid)
  UniqueFd stderr_pipe;   // Chromium's stdout+stderr, read by the agent
};

// Forks and execs Chromium as the browser uid/gid in its own session, with
// PR_SET_PDEATHSIG so it dies with the agent. Fails if exec failed.
Result<ChromiumProcess> spawn_chromium(const AgentConfig& config, bool sandbox);

struct DevToolsEndpoint {
  std::uint16_t port = 0;
  std::string browser_path;  // "/devtools/browser/<id>"
};

// Parses DevToolsActivePort ("<port>\n<path>"); nullopt until complete.
std::optional<DevToolsEndpoint> parse_devtools_active_port(std::string_view text);
std::optional<DevToolsEndpoint> read_devtools_active_port(const std::string& user_data_dir);

// If Chromium's output shows it died because the kernel refused its sandbox,
// returns the line that says so.
std::optional<std::string> find_sandbox_refusal(std::string_view chromium_output);

}  // namespace kindling::agent
