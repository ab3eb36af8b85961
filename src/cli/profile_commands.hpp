// `kindling profile create|list|get|delete`: thin clients of /v1/profiles
// (docs/api.md, "Profiles"; docs/profiles.md).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>

namespace kindling::cli {

// Each command stores its process exit status in *exit_code.
void add_profile_commands(CLI::App& app, std::shared_ptr<int> exit_code);

}  // namespace kindling::cli
