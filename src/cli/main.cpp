// The kindling command: `serve` runs the platform; `session ...` talks to it;
// `image ...` builds and checks the guest image.
#include <CLI/CLI.hpp>

#include <memory>

#include "cli/image_commands.hpp"
#include "cli/serve.hpp"
#include "cli/session_commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Kindling: self-hosted cloud browsers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "kindling 0.1.0");
  auto exit_code = std::make_shared<int>(0);
  kindling::cli::add_serve_command(app, exit_code);
  kindling::cli::add_session_commands(app, exit_code);
  kindling::cli::add_image_commands(app, exit_code);
  CLI11_PARSE(app, argc, argv);
  return *exit_code;
}
