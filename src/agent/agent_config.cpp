#include "agent/agent_config.hpp"

#include <sys/un.h>

#include <charconv>
#include <string_view>

namespace kindling::agent {

namespace {

constexpr std::size_t kMaxExtraFlags = 64;
constexpr std::size_t kMaxFlagBytes = 1024;
constexpr std::size_t kMaxPathBytes = 1024;
constexpr std::size_t kMaxExtensions = 16;

// Flags the agent owns: letting a caller override them would break readiness
// detection, the relay, Chromium's sandbox, or the forward proxy (the
// session's upstream proxy and its policy).
constexpr std::string_view kReservedFlags[] = {
    "--no-sandbox", "--user-data-dir", "--remote-debugging-port", "--remote-debugging-address",
    "--remote-debugging-pipe", "--disable-setuid-sandbox", "--no-zygote", "--single-process",
    "--proxy-server", "--no-proxy-server", "--proxy-pac-url", "--proxy-auto-detect", "--proxy-bypass-list",
    // --extension's: two lists would fight over which extensions run.
    "--load-extension", "--disable-extensions-except",
};

Result<std::uint32_t> parse_u32(std::string_view text, const char* what, std::uint32_t max) {
  std::uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > max)
    return make_error(std::string(what) + " must be an integer between 0 and " + std::to_string(max) + ", got '" +
                      std::string(text.substr(0, 64)) + "'");
  return value;
}

Status check_path(const std::string& path, const char* what) {
  if (path.empty() || path[0] != '/') return make_error(std::string(what) + " must be an absolute path");
  if (path.size() > kMaxPathBytes) return make_error(std::string(what) + " is too long");
  if (path.find('\0') != std::string::npos) return make_error(std::string(what) + " contains a NUL byte");
  return ok_status();
}

Status check_extra_flag(const std::string& flag) {
  if (flag.size() < 3 || flag.rfind("--", 0) != 0)
    return make_error("--extra-flag must be a Chromium switch starting with '--', got '" + flag.substr(0, 64) + "'");
  if (flag.size() > kMaxFlagBytes) return make_error("--extra-flag is longer than 1024 bytes");
  std::string_view name(flag);
  name = name.substr(0, name.find('='));
  for (auto reserved : kReservedFlags)
    if (name == reserved) return make_error("--extra-flag " + std::string(name) + " is reserved for the agent");
  return ok_status();
}

}  // namespace

std::string ListenAddress::to_string() const {
  return kind == Kind::kUnix ? "unix:" + unix_path : "vsock:" + std::to_string(vsock_port);
}

Result<ListenAddress> parse_listen_address(const std::string& text) {
  ListenAddress address;
  if (text.rfind("unix:", 0) == 0) {
    address.kind = ListenAddress::Kind::kUnix;
    address.unix_path = text.substr(5);
    if (auto valid = check_path(address.unix_path, "--listen unix: path"); !valid) return valid.error();
    if (address.unix_path.size() >= sizeof(sockaddr_un::sun_path))
      return make_error("--listen unix: path is longer than a socket address allows (107 bytes)");
    return address;
  }
  if (text.rfind("vsock:", 0) == 0) {
    address.kind = ListenAddress::Kind::kVsock;
    KINDLING_TRY(port, parse_u32(std::string_view(text).substr(6), "--listen vsock: port", 0xfffffffeu));
    address.vsock_port = port;
    return address;
  }
  return make_error("--listen must be unix:/path or vsock:PORT, got '" + text.substr(0, 64) + "'");
}

Result<ParsedArgs> parse_agent_args(int argc, const char* const* argv) {
  ParsedArgs parsed;
  AgentConfig& config = parsed.config;
  bool have_listen = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      parsed.action = ParsedArgs::Action::kHelp;
      return parsed;
    }
    if (arg == "--version") {
      parsed.action = ParsedArgs::Action::kVersion;
      return parsed;
    }
    // Both "--name=value" and "--name value".
    std::string name = arg, value;
    bool inline_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inline_value = true;
    }
    static const std::string_view kKnown[] = {"--listen", "--chromium", "--user-data-dir", "--browser-uid",
                                              "--browser-gid", "--extra-flag", "--log-level",
                                              "--extension", "--profile-seed"};
    bool known = false;
    for (auto k : kKnown) known = known || name == k;
    if (!known) return make_error("unknown option '" + arg.substr(0, 64) + "' (see --help)");
    if (!inline_value) {
      if (i + 1 >= argc) return make_error("option " + name + " needs a value");
      value = argv[++i];
    }
    if (name == "--listen") {
      KINDLING_TRY(address, parse_listen_address(value));
      config.listen = address;
      have_listen = true;
    } else if (name == "--chromium") {
      if (auto valid = check_path(value, "--chromium"); !valid) return valid.error();
      config.chromium_path = value;
    } else if (name == "--user-data-dir") {
      if (auto valid = check_path(value, "--user-data-dir"); !valid) return valid.error();
      if (value.find_last_not_of('/') == std::string::npos || value.find("/../") != std::string::npos ||
          value.ends_with("/.."))
        return make_error("--user-data-dir must name a directory below /, without '..'");
      while (value.size() > 1 && value.back() == '/') value.pop_back();
      config.user_data_dir = value;
    } else if (name == "--browser-uid") {
      KINDLING_TRY(uid, parse_u32(value, "--browser-uid", 0xfffffffeu));
      config.browser_uid = uid;
    } else if (name == "--browser-gid") {
      KINDLING_TRY(gid, parse_u32(value, "--browser-gid", 0xfffffffeu));
      config.browser_gid = gid;
    } else if (name == "--extra-flag") {
      if (auto valid = check_extra_flag(value); !valid) return valid.error();
      if (config.extra_flags.size() >= kMaxExtraFlags) return make_error("at most 64 --extra-flag options");
      config.extra_flags.push_back(value);
    } else if (name == "--profile-seed") {
      if (auto valid = check_path(value, "--profile-seed"); !valid) return valid.error();
      if (value.find("/..") != std::string::npos) return make_error("--profile-seed must be a path without '..'");
      config.profile_seed_dir = value;
    } else if (name == "--extension") {
      if (auto valid = check_path(value, "--extension"); !valid) return valid.error();
      // Chromium splits its extension lists on commas.
      if (value.find(',') != std::string::npos || value.find("/..") != std::string::npos)
        return make_error("--extension must be a path without ',' or '..'");
      if (config.extension_dirs.size() >= kMaxExtensions) return make_error("at most 16 --extension options");
      config.extension_dirs.push_back(value);
    } else if (name == "--log-level") {
      if (!parse_log_level(value, config.log_level))
        return make_error("--log-level must be debug, info, warn, error or off");
    }
  }
  if (!have_listen) return make_error("--listen is required (unix:/path or vsock:PORT)");
  return parsed;
}

std::string agent_usage() {
  return "usage: kindling-agent --listen unix:/path|vsock:PORT\n"
         "                      [--chromium /usr/lib/chromium/chromium] [--user-data-dir /home/browser/profile]\n"
         "                      [--browser-uid 1000 --browser-gid 1000] [--extra-flag=--switch]...\n"
         "                      [--extension /path/to/unpacked/extension]...\n"
         "                      [--profile-seed /path/to/saved/profile]\n"
         "                      [--log-level debug|info|warn|error|off]\n"
         "PID 1 of a Kindling machine: starts Chromium and serves the agent protocol (docs/agent-protocol.md).\n";
}

}  // namespace kindling::agent
