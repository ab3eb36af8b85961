// Runs a host tool (`ip`, `nft`) with a fixed argv and no shell: posix_spawn
// of an absolute path, a clean environment, optional stdin text, and its
// stderr kept for the error message. Arguments are built by the caller only
// from values it parsed and re-printed itself.
#pragma once

#include <string>
#include <vector>

#include "common/result.hpp"

namespace kindling::node {

// Runs `argv` (argv[0] an absolute path) to completion. Fails with the tool's
// stderr when it exits non-zero.
Status run_host_command(const std::vector<std::string>& argv, const std::string& stdin_text = {});

// Absolute path of `name` under /usr/sbin, /sbin, /usr/bin or /bin; empty if absent.
std::string find_host_tool(const std::string& name);

}  // namespace kindling::node
