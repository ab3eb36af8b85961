// `kindling session create|list|get|delete`: thin clients of the REST API.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>

namespace kindling::cli {

// Each command stores its process exit status in *exit_code.
void add_session_commands(CLI::App& app, std::shared_ptr<int> exit_code);

}  // namespace kindling::cli
