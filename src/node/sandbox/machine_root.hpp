// The filesystem a machine sees, as a list of steps computed on the host
// before clone() and replayed by the child with raw syscalls (the child of a
// multi-threaded process must not allocate). Every string a step points to
// lives in the MachineRoot, which outlives the clone.
//
// Layout inside: a tmpfs of MachineSpec::scratch_bytes as /, read-only binds
// of the host's system directories and selected /etc entries, /dev (a small
// read-only tmpfs with bound device nodes), /dev/shm (a tmpfs of
// scratch_bytes), /proc, /run/kindling (read-write, the host's <state>/<id>),
// /kindling/agent, and a session's extensions read-only at
// /kindling/extensions/<name>. / is read-only once built; /tmp and /home/browser are
// writable views of the root tmpfs, so they share one scratch_bytes budget.
// The memory cgroup bounds the sum of everything a machine keeps in RAM.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "node/sandbox/sandbox_config.hpp"

namespace kindling::node {

inline constexpr uid_t kBrowserUid = 1000;
inline constexpr gid_t kBrowserGid = 1000;

struct RootStep {
  enum class Kind {
    kMountTmpfs,  // target, data (mount options)
    kMountProc,   // target
    kMkdir,       // target, mode, uid/gid (-1: keep)
    kTouch,       // target: an empty file to bind a file onto
    kSymlink,     // source (link text), target
    kBind,        // source, target, attr_set (MOUNT_ATTR_*), recursively
    kSetAttr,     // target, attr_set: on that one mount, not its submounts
  };
  Kind kind;
  const char* source = nullptr;
  const char* target = nullptr;
  const char* data = nullptr;
  unsigned mode = 0;
  int uid = -1;
  int gid = -1;
  std::uint64_t attr_set = 0;
};

// A host directory the child holds open (O_PATH) at descriptor number `fd`,
// bound read-only at `inside` (an absolute path in the machine).
struct HostDirBind {
  int fd = -1;
  std::string inside;
};

class MachineRoot {
 public:
  // new_root: the (empty, shared) host directory the root tmpfs is mounted
  // on in the child's private mount namespace; the steps are relative to it.
  // run_fd, agent_fd: descriptor numbers where the child holds (O_PATH) the
  // host's <state>/<id> and the agent binary; both are bound through
  // /proc/self/fd, as descriptors opened in the child's mount namespace.
  // host_dirs: more host directories held like run_fd (a session's
  // extensions), each bound read-only, no exec.
  static Result<MachineRoot> plan(const SandboxConfig& config, const std::string& new_root, int run_fd,
                                  int agent_fd, std::uint64_t scratch_bytes,
                                  const std::vector<HostDirBind>& host_dirs = {});

  const std::vector<RootStep>& steps() const { return steps_; }
  const char* new_root() const { return new_root_; }
  const char* root_tmpfs_options() const { return root_options_; }

 private:
  const char* keep(std::string s);
  std::string inside(const std::string& path) const;
  void mkdirs(const std::string& path);  // each missing ancestor, then path
  Status add_host_entry(const std::string& host_path, const std::string& path_inside);

  std::deque<std::string> strings_;  // stable addresses for the steps
  std::vector<RootStep> steps_;
  std::vector<std::string> made_dirs_;
  std::string root_;
  const char* new_root_ = nullptr;
  const char* root_options_ = nullptr;
};

}  // namespace kindling::node
