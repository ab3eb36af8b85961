// Runs the external tools of an image build (mmdebstrap, mksquashfs,
// dpkg-query, apt-cache) with execve and a fixed argv: no shell, so no
// string is ever interpreted as shell syntax.
#pragma once

#include <string>
#include <vector>

#include "common/result.hpp"

namespace kindling::image {

struct ToolRun {
  std::vector<std::string> argv;      // argv[0]: an absolute path, or a name looked up in /usr/sbin:/usr/bin:/sbin:/bin
  std::vector<std::string> env;       // NAME=value added to a minimal environment
  std::string stderr_path;            // stderr (and stdout unless captured) appended here; empty: inherited
  bool capture_stdout = false;        // return stdout as the result text
  // A private mount namespace for the tool: mounts it makes (mmdebstrap's
  // /proc, /sys, /dev in the chroot) vanish with it, even when it is killed.
  bool private_mounts = false;
  std::string cwd;                    // working directory of the tool; empty: this process's
};

// The tool's stdout if captured; an error naming the tool and its exit
// status (and the last lines of stderr_path) when it fails. The tool gets
// SIGKILL when this process dies (an interrupted build leaves no tool behind).
Result<std::string> run_tool(const ToolRun& run);

// Where `name` lives in the fixed search path; empty if nowhere.
std::string find_tool(const std::string& name);

}  // namespace kindling::image
