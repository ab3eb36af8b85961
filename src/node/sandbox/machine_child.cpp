#include "node/sandbox/machine_child.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

namespace kindling::node {
namespace {

long sys(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0) {
  long rc = ::syscall(nr, a, b, c, d, e);
  return rc < 0 ? -errno : rc;
}

template <typename T>
long ptr(T p) {
  return reinterpret_cast<long>(p);
}

std::size_t length(const char* s) {
  std::size_t n = 0;
  while (s && s[n]) ++n;
  return n;
}

// Reports a failed step to the parent and exits; the message is built on the
// stack because the heap may be locked by a thread that does not exist here.
[[noreturn]] void fail(const MachineChildPlan& plan, const char* step, const char* path, long err) {
  char buf[1024];
  std::size_t n = 0;
  auto put = [&](const char* s) {
    for (std::size_t i = 0; s && s[i] && n < sizeof buf - 24; ++i) buf[n++] = s[i];
  };
  put(step);
  if (path) {
    put(": ");
    put(path);
  }
  put(": errno ");
  char digits[16];
  int d = 0;
  long v = err < 0 ? -err : err;
  do {
    digits[d++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v && d < 15);
  while (d) buf[n++] = digits[--d];
  sys(SYS_write, plan.status_fd, ptr(buf), static_cast<long>(n));
  sys(SYS_exit_group, 127);
  __builtin_unreachable();
}

void run_step(const MachineChildPlan& plan, const RootStep& step) {
  long rc = 0;
  switch (step.kind) {
    case RootStep::Kind::kMountTmpfs:
      rc = sys(SYS_mount, ptr("tmpfs"), ptr(step.target), ptr("tmpfs"), MS_NOSUID | MS_NODEV, ptr(step.data));
      if (rc < 0) fail(plan, "mount tmpfs", step.target, rc);
      return;
    case RootStep::Kind::kMountProc:
      rc = sys(SYS_mount, ptr("proc"), ptr(step.target), ptr("proc"), MS_NOSUID | MS_NODEV | MS_NOEXEC, 0);
      if (rc < 0) fail(plan, "mount proc", step.target, rc);
      return;
    case RootStep::Kind::kMkdir:
      rc = sys(SYS_mkdirat, AT_FDCWD, ptr(step.target), step.mode);
      if (rc < 0 && rc != -EEXIST) fail(plan, "mkdir", step.target, rc);
      // mkdir honours the umask; the mode must be exact (1777 for /tmp).
      rc = sys(SYS_fchmodat, AT_FDCWD, ptr(step.target), step.mode);
      if (rc < 0) fail(plan, "chmod", step.target, rc);
      if (step.uid >= 0) {
        rc = sys(SYS_fchownat, AT_FDCWD, ptr(step.target), step.uid, step.gid, 0);
        if (rc < 0) fail(plan, "chown", step.target, rc);
      }
      return;
    case RootStep::Kind::kTouch:
      rc = sys(SYS_openat, AT_FDCWD, ptr(step.target), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      if (rc < 0) fail(plan, "create", step.target, rc);
      sys(SYS_close, rc);
      return;
    case RootStep::Kind::kSymlink:
      rc = sys(SYS_symlinkat, ptr(step.source), AT_FDCWD, ptr(step.target));
      if (rc < 0) fail(plan, "symlink", step.target, rc);
      return;
    case RootStep::Kind::kSetAttr: {
      struct mount_attr attr{};
      attr.attr_set = step.attr_set;
      rc = sys(SYS_mount_setattr, AT_FDCWD, ptr(step.target), 0, ptr(&attr), sizeof attr);
      if (rc < 0) fail(plan, "mount_setattr", step.target, rc);
      return;
    }
    case RootStep::Kind::kBind: {
      rc = sys(SYS_mount, ptr(step.source), ptr(step.target), 0, MS_BIND | MS_REC, 0);
      if (rc < 0) fail(plan, "bind", step.target, rc);
      if (step.attr_set) {
        // mount_setattr changes only the flags it is given, so flags the
        // kernel locks on host mounts (nosuid, atime...) are kept, and
        // AT_RECURSIVE covers submounts as well.
        struct mount_attr attr{};
        attr.attr_set = step.attr_set;
        rc = sys(SYS_mount_setattr, AT_FDCWD, ptr(step.target), AT_RECURSIVE, ptr(&attr), sizeof attr);
        if (rc < 0) fail(plan, "mount_setattr", step.target, rc);
      }
      return;
    }
  }
}

// Puts descriptor `fd` at number `at` (a number the parent reserved).
void move_fd(const MachineChildPlan& plan, long fd, int at, const char* what) {
  if (fd == at) return;
  long rc = sys(SYS_dup3, fd, at, O_CLOEXEC);
  if (rc < 0) fail(plan, "dup3", what, rc);
  sys(SYS_close, fd);
}

// Brings up lo: the only interface of a fresh network namespace, down at birth.
long loopback_up() {
  long fd = sys(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fd;
  struct ifreq req{};
  std::memcpy(req.ifr_name, "lo", 3);
  long rc = sys(SYS_ioctl, fd, SIOCGIFFLAGS, ptr(&req));
  // A network slot's namespace belongs to the host and has lo up already;
  // the machine could not change it (no CAP_NET_ADMIN there).
  if (rc >= 0 && !(req.ifr_flags & IFF_UP)) {
    req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP | IFF_RUNNING);
    rc = sys(SYS_ioctl, fd, SIOCSIFFLAGS, ptr(&req));
  }
  sys(SYS_close, fd);
  return rc;
}

}  // namespace

int machine_child_main(void* arg) {
  const MachineChildPlan& plan = *static_cast<const MachineChildPlan*>(arg);
  char byte = 0;
  // The parent writes one byte once we are in our cgroups and our uid map is
  // set; EOF means it gave up on us.
  if (sys(SYS_read, plan.release_fd, ptr(&byte), 1) != 1) sys(SYS_exit_group, 126);
  sys(SYS_close, plan.release_fd);
  long rc = 0;

  // Still host root here: open what lies below host directories the
  // machine's uids may not traverse, mount the root tmpfs and step into it.
  rc = sys(SYS_openat, AT_FDCWD, ptr(plan.agent_host_path), O_PATH | O_CLOEXEC);
  if (rc < 0) fail(plan, "open agent", plan.agent_host_path, rc);
  move_fd(plan, rc, plan.agent_fd, plan.agent_host_path);
  rc = sys(SYS_openat, AT_FDCWD, ptr(plan.run_dir_host_path), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rc < 0) fail(plan, "open run dir", plan.run_dir_host_path, rc);
  move_fd(plan, rc, plan.run_fd, plan.run_dir_host_path);
  for (std::size_t i = 0; i < plan.host_dir_count; ++i) {
    rc = sys(SYS_openat, AT_FDCWD, ptr(plan.host_dir_paths[i]), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rc < 0) fail(plan, "open host dir", plan.host_dir_paths[i], rc);
    move_fd(plan, rc, plan.host_dir_fds[i], plan.host_dir_paths[i]);
  }
  // Nothing we mount may propagate back to the host.
  rc = sys(SYS_mount, 0, ptr("/"), 0, MS_REC | MS_PRIVATE, 0);
  if (rc < 0) fail(plan, "make mounts private", "/", rc);
  rc = sys(SYS_mount, ptr("tmpfs"), ptr(plan.new_root), ptr("tmpfs"), MS_NOSUID | MS_NODEV,
           ptr(plan.root_tmpfs_options));
  if (rc < 0) fail(plan, "mount root tmpfs", plan.new_root, rc);
  rc = sys(SYS_chdir, ptr(plan.new_root));
  if (rc < 0) fail(plan, "chdir", plan.new_root, rc);

  // Become root of the new user namespace (mapped to the slot's first host
  // uid). Raw syscalls: glibc's wrappers would try to signal parent threads.
  rc = sys(SYS_setresgid, 0, 0, 0);
  if (rc < 0) fail(plan, "setresgid", nullptr, rc);
  rc = sys(SYS_setgroups, 0, 0);
  if (rc < 0) fail(plan, "setgroups", nullptr, rc);
  rc = sys(SYS_setresuid, 0, 0, 0);
  if (rc < 0) fail(plan, "setresuid", nullptr, rc);
  // Now that we sit in our cgroups, hide the host's cgroup paths.
  rc = sys(SYS_unshare, CLONE_NEWCGROUP);
  if (rc < 0) fail(plan, "unshare cgroup", nullptr, rc);

  long old_umask = sys(SYS_umask, 0);
  for (std::size_t i = 0; i < plan.step_count; ++i) run_step(plan, plan.steps[i]);

  // The cwd is the new root: pivot_root(".", ".") stacks the old root under
  // it, and detaching that leaves no path to the host's filesystem.
  rc = sys(SYS_pivot_root, ptr("."), ptr("."));
  if (rc < 0) fail(plan, "pivot_root", plan.new_root, rc);
  rc = sys(SYS_umount2, ptr("."), MNT_DETACH);
  if (rc < 0) fail(plan, "umount old root", nullptr, rc);
  rc = sys(SYS_chdir, ptr("/"));
  if (rc < 0) fail(plan, "chdir", "/", rc);
  // Per-mount read-only (MS_BIND): the writable binds of the same tmpfs stay writable.
  rc = sys(SYS_mount, 0, ptr("/"), 0, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, 0);
  if (rc < 0) fail(plan, "remount / read-only", nullptr, rc);
  sys(SYS_umask, old_umask);

  rc = sys(SYS_sethostname, ptr(plan.hostname), static_cast<long>(length(plan.hostname)));
  if (rc < 0) fail(plan, "sethostname", plan.hostname, rc);
  rc = loopback_up();
  if (rc < 0) fail(plan, "loopback up", "lo", rc);

  if (sys(SYS_dup2, plan.stdin_fd, 0) < 0 || sys(SYS_dup2, plan.log_fd, 1) < 0 || sys(SYS_dup2, plan.log_fd, 2) < 0) {
    fail(plan, "dup2", nullptr, -EBADF);
  }
  // Everything the node process had open stays behind at exec.
  rc = sys(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  if (rc < 0) fail(plan, "close_range", nullptr, rc);

  // Last: the seccomp filter (after it, mount would be refused).
  struct sock_fprog prog{};
  prog.len = static_cast<unsigned short>(plan.seccomp_len);
  prog.filter = const_cast<sock_filter*>(plan.seccomp);
  rc = sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (rc < 0) fail(plan, "no_new_privs", nullptr, rc);
  rc = sys(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, ptr(&prog));
  if (rc < 0) fail(plan, "seccomp", nullptr, rc);

  // Ignored signals stay ignored across exec; the agent starts with defaults.
  struct {
    unsigned long handler, flags, restorer, mask;
  } default_action{};
  for (long sig = 1; sig <= 64; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sys(SYS_rt_sigaction, sig, ptr(&default_action), 0, 8);
  }
  // The parent blocked every signal around clone(); the agent starts clean.
  sigset_t none;
  std::memset(&none, 0, sizeof none);
  sys(SYS_rt_sigprocmask, SIG_SETMASK, ptr(&none), 0, 8);
  rc = sys(SYS_execve, ptr(plan.exec_path), ptr(plan.argv), ptr(plan.envp));
  fail(plan, "execve", plan.exec_path, rc);
}

}  // namespace kindling::node
