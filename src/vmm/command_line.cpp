#include "vmm/command_line.hpp"

#include <iterator>
#include <string>
#include <string_view>

namespace kindling::vmm {
namespace {

struct Flag {
  const char* name;
  std::string CommandLine::*value;  // options that take a value
  bool CommandLine::*set;           // flags without one
  const char* help;
};

constexpr Flag kFlags[] = {
    {"--api-sock", &CommandLine::api_sock, nullptr, "PATH   Unix socket for the HTTP API"},
    {"--config-file", &CommandLine::config_file, nullptr, "FILE   Firecracker-style JSON configuration; the VM starts at once"},
    {"--no-api", nullptr, &CommandLine::no_api, "       Do not serve the API (needs --config-file)"},
    {"--id", &CommandLine::id, nullptr, "ID     Instance id, used in logs and GET / (default anonymous-instance)"},
    {"--level", &CommandLine::level, nullptr, "LEVEL  Log level: trace, debug, info, warn, error, off (default info)"},
    {"--log-path", &CommandLine::log_path, nullptr, "FILE   Write logs to this file instead of stderr"},
    {"--metrics-path", &CommandLine::metrics_path, nullptr, "FILE   Write metrics (JSON lines) to this file or FIFO"},
    {"--serial-out", &CommandLine::serial_out, nullptr, "FILE   Guest serial output to this file instead of stdout (as PUT /serial)"},
    {"--no-seccomp", nullptr, &CommandLine::no_seccomp, "       Do not install the seccomp filters (debugging only)"},
    {"--no-ioeventfd", nullptr, &CommandLine::no_ioeventfd,
     "       virtio notifications by MMIO exits even where KVM offers ioeventfd (testing)"},
};

}  // namespace

Result<CommandLine> parse_command_line(int argc, const char* const* argv) {
  CommandLine cl;
  bool seen[std::size(kFlags)] = {};
  for (int i = 1; i < argc; ++i) {
    std::string_view arg(argv[i]);
    if (arg == "-h" || arg == "--help") {
      cl.help = true;
      continue;
    }
    std::string_view name = arg.substr(0, arg.find('='));
    const Flag* flag = nullptr;
    for (const Flag& f : kFlags) {
      if (name == f.name) flag = &f;
    }
    if (!flag) return make_error("unexpected argument: " + std::string(arg));
    size_t index = static_cast<size_t>(flag - kFlags);
    if (seen[index]) return make_error(std::string(flag->name) + " given more than once");
    seen[index] = true;
    const bool inline_value = name.size() < arg.size();
    if (flag->set) {
      if (inline_value) return make_error(std::string(flag->name) + " takes no value");
      cl.*(flag->set) = true;
    } else if (inline_value) {
      cl.*(flag->value) = std::string(arg.substr(name.size() + 1));
    } else if (i + 1 < argc && std::string_view(argv[i + 1]).substr(0, 2) != "--") {
      cl.*(flag->value) = argv[++i];
    } else {
      return make_error(std::string(flag->name) + " needs a value");
    }
  }
  return cl;
}

std::string command_line_help(const char* program) {
  std::string text = "kindling-vmm: a KVM microVM monitor with a Firecracker-compatible API\n"
                     "Usage: " + std::string(program) + " --api-sock PATH [OPTIONS]\n"
                     "       " + std::string(program) + " --config-file FILE --no-api [OPTIONS]\n\nOptions:\n"
                     "  -h, --help            Print this help and exit\n";
  for (const Flag& f : kFlags) {
    std::string name = f.name;
    text += "  " + name + std::string(name.size() < 15 ? 15 - name.size() : 1, ' ') + f.help + "\n";
  }
  return text;
}

}  // namespace kindling::vmm
