// `kindling extension upload|list|get|delete`: thin clients of
// /v1/extensions (docs/api.md, "Extensions").
#pragma once

#include <CLI/CLI.hpp>

#include <memory>

namespace kindling::cli {

// Each command stores its process exit status in *exit_code.
void add_extension_commands(CLI::App& app, std::shared_ptr<int> exit_code);

}  // namespace kindling::cli
