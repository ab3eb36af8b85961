// What PID 1 sets up before Chromium can run: the filesystems Chromium needs
// and the loopback interface its debugging port listens on.
//
// In a microVM nothing is mounted yet. In the namespace sandbox the node has
// already mounted /proc, /dev, /dev/shm, /tmp and the profile's parent, and its
// seccomp filter forbids mount(2); so each mount is skipped when its target is
// already a mount point, and EPERM on an optional one is only logged.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace kindling::agent {

// Mount points listed in a /proc/<pid>/mountinfo text (field 5, unescaped).
std::set<std::string> parse_mount_points(std::string_view mountinfo);

struct MountStep {
  std::string target;
  bool skipped = false;  // already mounted
  bool failed = false;
  bool required = false;
  std::string detail;    // why it failed or was skipped
};

struct MachineInitReport {
  std::vector<MountStep> mounts;
  std::vector<std::string> warnings;  // non-fatal problems, logged
  std::vector<std::string> errors;    // fatal: Chromium cannot run
};

// Mounts what is missing (for a user-data-dir at `user_data_dir`), brings up
// loopback. Only meaningful as PID 1: the caller decides when to call it.
MachineInitReport init_machine(const std::string& user_data_dir);

}  // namespace kindling::agent
