// `kindling serve`: gateway and node in one process with SQLite, the
// embedded default on one host.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>

namespace kindling::cli {

void add_serve_command(CLI::App& app, std::shared_ptr<int> exit_code);

}  // namespace kindling::cli
