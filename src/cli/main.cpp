// The kindling command: `serve` runs the platform; `session ...` talks to it;
// `image ...` builds and checks the guest image.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>

#include "cli/image_commands.hpp"
#include "cli/serve.hpp"
#include "cli/extension_commands.hpp"
#include "cli/profile_commands.hpp"
#include "cli/session_commands.hpp"

namespace {

// CLI11 quotes unexpected arguments back whole, and a mistyped option is
// often followed by its value: a key or a proxy password would reach the
// terminal and its logs. Name the options, never echo values.
std::string describe_unexpected(const std::vector<std::string>& extras) {
  std::string names;
  int values = 0;
  for (const auto& arg : extras) {
    if (arg.rfind("-", 0) == 0) {
      names += (names.empty() ? "" : ", ") + arg.substr(0, arg.find('='));
    } else {
      ++values;
    }
  }
  std::string out = names.empty() ? "" : "unknown option " + names;
  if (values) {
    out += (out.empty() ? "" : "; ");
    out += std::to_string(values) + " unexpected argument" + (values > 1 ? "s" : "") + " (not shown)";
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Kindling: self-hosted cloud browsers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "kindling 0.1.0");
  auto exit_code = std::make_shared<int>(0);
  kindling::cli::add_serve_command(app, exit_code);
  kindling::cli::add_session_commands(app, exit_code);
  kindling::cli::add_extension_commands(app, exit_code);
  kindling::cli::add_profile_commands(app, exit_code);
  kindling::cli::add_image_commands(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ExtrasError&) {
    std::vector<std::string> extras = app.remaining();
    for (auto* sub : app.get_subcommands())
      for (auto& e : sub->remaining()) extras.push_back(e);
    std::cerr << "error: " << describe_unexpected(extras) << "\nRun with --help for more information.\n";
    return static_cast<int>(CLI::ExitCodes::ExtrasError);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return *exit_code;
}
