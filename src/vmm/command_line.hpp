// kindling-vmm's command line (docs/vmm-api.md lists the flags). Parsed by
// hand: a dozen flags do not need a framework, and CLI11 brought iostreams
// (their static initialisation runs at every start) and ~0.2 MB of code into
// a binary whose start-up time and memory are goals of their own.
#pragma once

#include <string>

#include "common/result.hpp"

namespace kindling::vmm {

struct CommandLine {
  std::string api_sock;
  std::string config_file;
  bool no_api = false;
  std::string id = "anonymous-instance";
  std::string level = "info";
  std::string log_path;
  std::string metrics_path;
  std::string serial_out;
  bool no_seccomp = false;
  bool no_ioeventfd = false;
  bool help = false;  // -h or --help: print command_line_help() and exit 0
};

// `--flag VALUE` or `--flag=VALUE` (a separate VALUE may not start with
// "--": `--api-sock --no-api` is a mistake, not a socket path); each flag at
// most once; no positional arguments. Errors name the argument; the caller exits with status 153.
Result<CommandLine> parse_command_line(int argc, const char* const* argv);

std::string command_line_help(const char* program);

}  // namespace kindling::vmm
