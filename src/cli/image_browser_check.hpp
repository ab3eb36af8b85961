// The last step of `kindling image check`: one machine of the sandbox
// backend on the image's root; its agent must report Ready and a CDP stream
// through it must answer GET /json/version.
#pragma once

#include <ostream>
#include <string>

#include "common/result.hpp"
#include "node/sandbox/sandbox_config.hpp"

namespace kindling::cli {

// Returns Chromium's "Browser" string (e.g. "Chrome/138.0...").
Result<std::string> check_browser_in_sandbox(const node::SandboxConfig& config, std::ostream& out);

}  // namespace kindling::cli
