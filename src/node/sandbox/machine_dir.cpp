// Host access to a directory inside a sandbox machine, through the machine
// root process's /proc/<pid>/root. Every lookup uses openat2 with
// RESOLVE_IN_ROOT and RESOLVE_NO_SYMLINKS: ".." cannot climb out of the
// machine's root and no link the machine made is followed, so a hostile
// machine can point the host at nothing but its own plain directories.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "node/sandbox/sandbox_backend.hpp"

namespace kindling::node {

namespace {

int openat2_in_root(int root, const std::string& path, std::uint64_t flags) {
  open_how how{};
  how.flags = flags;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, root, path.c_str(), &how, sizeof how));
}

}  // namespace

Result<UniqueFd> SandboxMachine::open_machine_dir(const std::string& path) {
  if (path.empty() || path.front() != '/' || path.size() > 256 || path.back() == '/')
    return make_error("machine path must be absolute: " + path);
  UniqueFd root(::open(("/proc/" + std::to_string(pid_) + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return make_error("machine " + id_ + " is gone", "conflict");
  constexpr std::uint64_t kDirFlags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  UniqueFd dir(openat2_in_root(root.get(), path, kDirFlags));
  if (!dir.valid()) {
    if (errno == ENOENT) return make_error(path + " does not exist in the machine", "not_found");
    if (errno == ELOOP || errno == EXDEV || errno == ENOTDIR)
      return make_error(path + " in the machine is not a plain directory", "conflict");
    return make_error("cannot open " + path + " in the machine: " + std::strerror(errno));
  }
  return dir;
}

Result<UniqueFd> SandboxMachine::create_machine_file(const std::string& dir, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    return make_error("bad file name", "bad_request");
  KINDLING_TRY(parent, open_machine_dir(dir));
  // The machine's filesystems belong to its user namespace: an inode owned
  // by the host's root cannot be made there (EOVERFLOW). Create it as the
  // machine's browser user, on this thread only (fsuid is per thread).
  const uid_t browser = host_uid_ + kMachineBrowserUid;
  const int old_uid = ::setfsuid(browser);
  const int old_gid = ::setfsgid(browser);
  UniqueFd fd(::openat(parent.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  const int err = errno;
  ::setfsgid(old_gid);
  ::setfsuid(old_uid);
  if (!fd.valid()) {
    if (err == EEXIST) return make_error("a file named '" + name + "' is already there", "conflict");
    if (err == ENOSPC || err == EDQUOT) return make_error("the machine's scratch space is full", "payload_too_large");
    return make_error("cannot create '" + name + "' in the machine: " + std::strerror(err));
  }
  return fd;
}

}  // namespace kindling::node
