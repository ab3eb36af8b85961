// The agent's command line, validated once into an immutable AgentConfig.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "agent/agent_log.hpp"
#include "common/result.hpp"

namespace kindling::agent {

inline constexpr const char* kAgentVersion = "0.1.0";

struct ListenAddress {
  enum class Kind { kUnix, kVsock };
  Kind kind = Kind::kUnix;
  std::string unix_path;     // kUnix
  std::uint32_t vsock_port = 0;  // kVsock, bound on VMADDR_CID_ANY
  std::string to_string() const;
};

struct AgentConfig {
  ListenAddress listen;
  std::string chromium_path = "/usr/lib/chromium/chromium";
  std::string user_data_dir = "/home/browser/profile";
  uid_t browser_uid = 1000;
  gid_t browser_gid = 1000;
  std::vector<std::string> extra_flags;
  // Unpacked extensions Chromium loads (--load-extension), and the only ones
  // it may run (--disable-extensions-except). Empty: none.
  std::vector<std::string> extension_dirs;
  // A saved profile (read-only) copied into the fresh user-data-dir before
  // Chromium starts. Empty: Chromium starts with an empty profile.
  std::string profile_seed_dir;
  LogLevel log_level = LogLevel::kInfo;
  // Not a flag: the port the agent's forward proxy got, set before Chromium
  // starts; Chromium gets --proxy-server=http://127.0.0.1:<it>. 0: none.
  std::uint16_t proxy_port = 0;
};

// What the command line asked for: run, or print help/version and exit 0.
struct ParsedArgs {
  enum class Action { kRun, kHelp, kVersion };
  Action action = Action::kRun;
  AgentConfig config;
};

Result<ListenAddress> parse_listen_address(const std::string& text);
Result<ParsedArgs> parse_agent_args(int argc, const char* const* argv);
std::string agent_usage();

}  // namespace kindling::agent
