#include "common/browser_seccomp.hpp"

#include <errno.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <memory>

namespace kindling {

const std::vector<std::string>& browser_denied_syscalls() {
  static const std::vector<std::string> names = {
      // inspecting or writing other processes
      "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
      // changing the filesystem view (the machine's mounts are final)
      "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen",
      "fsmount", "fspick", "fsconfig", "mount_setattr",
      // kernel replacement, modules, kernel-level programs
      "kexec_load", "kexec_file_load", "init_module", "finit_module",
      "delete_module", "bpf", "perf_event_open",
      // kernel keyrings
      "keyctl", "add_key", "request_key",
      // host-wide state: power, swap, accounting, clocks, quotas, logs
      "reboot", "swapon", "swapoff", "acct", "settimeofday", "clock_settime",
      "clock_adjtime", "adjtimex", "quotactl", "quotactl_fd", "syslog",
      "vhangup", "lookup_dcookie", "nfsservctl", "uselib", "sysfs", "_sysctl",
      // raw hardware access
      "iopl", "ioperm",
      // file handles bypass path-based permission checks
      "open_by_handle_at", "name_to_handle_at",
      // userfaultfd widens kernel race windows; a browser never uses it
      "userfaultfd",
  };
  return names;
}

Result<std::vector<sock_filter>> compile_browser_seccomp() {
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(SCMP_ACT_ALLOW),
                                                        seccomp_release);
  if (!ctx) return make_error("seccomp_init failed");
  // A syscall through another ABI (int 0x80, x32) would dodge the rules.
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc != 0) {
    return make_error(std::string("seccomp bad-arch action: ") + std::strerror(-rc));
  }
  for (const auto& name : browser_denied_syscalls()) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    // Syscalls this architecture does not have need no rule.
    if (nr == __NR_SCMP_ERROR || nr < 0) continue;
    int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (rc != 0) {
      return make_error("seccomp rule for " + name + ": " + std::strerror(-rc));
    }
  }
  // Export the BPF through a memfd: libseccomp only writes to descriptors.
  int fd = static_cast<int>(::syscall(SYS_memfd_create, "kindling-seccomp", MFD_CLOEXEC));
  if (fd < 0) return make_error(std::string("memfd_create: ") + std::strerror(errno));
  std::vector<char> bytes;
  int rc = seccomp_export_bpf(ctx.get(), fd);
  if (rc == 0) {
    off_t size = ::lseek(fd, 0, SEEK_END);
    if (size > 0 && ::lseek(fd, 0, SEEK_SET) == 0) {
      bytes.resize(static_cast<std::size_t>(size));
      std::size_t got = 0;
      while (got < bytes.size()) {
        ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
      }
      if (got != bytes.size()) bytes.clear();
    }
  }
  ::close(fd);
  if (rc != 0) return make_error(std::string("seccomp_export_bpf: ") + std::strerror(-rc));
  if (bytes.empty() || bytes.size() % sizeof(sock_filter) != 0) {
    return make_error("seccomp_export_bpf produced no usable program");
  }
  std::vector<sock_filter> program(bytes.size() / sizeof(sock_filter));
  std::memcpy(program.data(), bytes.data(), bytes.size());
  return program;
}

int install_seccomp_program(const std::vector<sock_filter>& program) {
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program.size());
  prog.filter = const_cast<sock_filter*>(program.data());
  if (::syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) return errno;
  return 0;
}

}  // namespace kindling
