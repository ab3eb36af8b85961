// What the cloned child does between clone() and execve() of the agent. It
// runs in a copy of a multi-threaded process, so it only makes raw syscalls:
// no allocation, no locks, no glibc wrappers that talk to other threads
// (setresuid & co. in glibc signal every thread of the parent).
#pragma once

#include <linux/filter.h>

#include <cstddef>

#include "node/sandbox/machine_root.hpp"

namespace kindling::node {

struct MachineChildPlan {
  int release_fd = -1;  // read end: one byte once cgroups and id maps are set
  int status_fd = -1;   // write end (close-on-exec): a failure message, or EOF on exec
  int stdin_fd = -1;    // /dev/null
  int log_fd = -1;      // agent stdout and stderr
  // The agent binary, reopened by the child in its own mount namespace (a
  // descriptor from the host's namespace cannot be a bind source) and placed
  // at descriptor number agent_fd, which the root plan binds from.
  const char* agent_host_path = nullptr;
  int agent_fd = -1;
  const char* run_dir_host_path = nullptr;  // likewise, at run_fd
  int run_fd = -1;
  // More host directories, likewise: host_dir_paths[i] reopened at host_dir_fds[i].
  const char* const* host_dir_paths = nullptr;
  const int* host_dir_fds = nullptr;
  std::size_t host_dir_count = 0;
  const char* root_tmpfs_options = nullptr;
  const RootStep* steps = nullptr;
  std::size_t step_count = 0;
  const char* new_root = nullptr;
  const char* hostname = nullptr;
  const sock_filter* seccomp = nullptr;
  std::size_t seccomp_len = 0;
  const char* exec_path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
};

// Entry point for clone(); `arg` is a MachineChildPlan*. Never returns on
// success; on failure writes "<step>: <path>: <errno>" to status_fd and exits.
int machine_child_main(void* arg);

}  // namespace kindling::node
