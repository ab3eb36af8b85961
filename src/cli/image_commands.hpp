// `kindling image build` and `kindling image check` (docs/image.md).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>

namespace kindling::cli {

void add_image_commands(CLI::App& app, std::shared_ptr<int> exit_code);

}  // namespace kindling::cli
