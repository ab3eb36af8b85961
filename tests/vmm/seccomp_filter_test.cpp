// The seccomp filters compiled into kindling-vmm at build time, installed in
// a forked child: allowed syscalls work, a denied one ends the process with
// status 148 (ExitCode::kBadSyscall). No KVM needed.
#include "vmm/seccomp_policy.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <functional>

#include "vmm/exit_code.hpp"

namespace kindling::vmm {
namespace {

// Runs `body` in a child under the filter; returns its exit status, or -1.
int exit_status_under(SeccompThread which, const std::function<int()>& body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, 2);  // the SIGSYS handler's report
    if (!install_seccomp_filter(which)) ::_exit(99);
    ::_exit(body());
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

const int kDenied = to_int(ExitCode::kBadSyscall);

// Sanitizer builds compile the filters with the ASan/UBSan runtime's own
// syscalls (vmm_seccompiler --sanitizer-runtime), openat among them, so
// "may not open files" holds only in the normal build; mkdir (in no list)
// stands for file-system changes in both.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizerRuntime = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitizerRuntime = true;
#else
constexpr bool kSanitizerRuntime = false;
#endif
#else
constexpr bool kSanitizerRuntime = false;
#endif
const int kOpenDenied = kSanitizerRuntime ? 0 : kDenied;

int make_directory() { return ::mkdir("/nonexistent-kindling-seccomp-test/x", 0700) == 0 ? 0 : 1; }

TEST(SeccompFilter, VcpuThreadsMayOnlyRunTheGuestAndWrite) {
  EXPECT_EQ(exit_status_under(SeccompThread::kVcpu, [] { return ::getpid() > 0 && ::write(1, "", 0) == 0 ? 0 : 1; }), 0);
  EXPECT_EQ(exit_status_under(SeccompThread::kVcpu, [] { return ::open("/dev/null", O_RDONLY) >= 0 ? 0 : 1; }), kOpenDenied);
  EXPECT_EQ(exit_status_under(SeccompThread::kVcpu, make_directory), kDenied);
  EXPECT_EQ(exit_status_under(SeccompThread::kVcpu, [] { return ::socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 0 : 1; }), kDenied);
  // ioctl only as KVM_RUN (on a bad descriptor here: EBADF, not SIGSYS).
  EXPECT_EQ(exit_status_under(SeccompThread::kVcpu, [] { return ::ioctl(-1, KVM_RUN, 0) < 0 && errno == EBADF ? 0 : 1; }), 0);
  EXPECT_EQ(exit_status_under(SeccompThread::kVcpu, [] { return ::ioctl(-1, KVM_GET_REGS, 0) < 0 ? 0 : 1; }), kDenied);
}

TEST(SeccompFilter, ApiThreadOpensFilesDrivesKvmAndAttachesTaps) {
  EXPECT_EQ(exit_status_under(SeccompThread::kApi, [] { return ::open("/dev/null", O_RDONLY) >= 0 ? 0 : 1; }), 0);
  EXPECT_EQ(exit_status_under(SeccompThread::kApi, [] { return ::ioctl(-1, KVM_GET_REGS, 0) < 0 && errno == EBADF ? 0 : 1; }), 0);
  EXPECT_EQ(exit_status_under(SeccompThread::kApi, [] { return ::ioctl(-1, TUNSETIFF, 0) < 0 && errno == EBADF ? 0 : 1; }), 0);
  // The device thread may start under this filter, so its backend I/O
  // (vsock and tap sockets) is allowed here too.
  EXPECT_EQ(exit_status_under(SeccompThread::kApi, [] { return ::socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 0 : 1; }), 0);
  EXPECT_EQ(exit_status_under(SeccompThread::kApi, [] { return ::ioctl(-1, TUNSETOFFLOAD, 0) < 0 ? 0 : 1; }), kDenied);
  // No terminal probes: the logger never asks whether stderr is a tty.
  EXPECT_EQ(exit_status_under(SeccompThread::kApi, [] {
              termios t{};
              return ::ioctl(0, TCGETS, &t) == 0 ? 0 : 1;
            }),
            kDenied);
}

TEST(SeccompFilter, DeviceThreadsDoBackendIoButNoIoctlAndOpenNothing) {
  EXPECT_EQ(exit_status_under(SeccompThread::kDevice, [] { return ::socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 0 : 1; }), 0);
  EXPECT_EQ(exit_status_under(SeccompThread::kDevice, [] {
              char byte = 0;
              return ::pread(-1, &byte, 1, 0) < 0 && errno == EBADF ? 0 : 1;
            }),
            0);
  EXPECT_EQ(exit_status_under(SeccompThread::kDevice, [] { return ::open("/dev/null", O_RDONLY) >= 0 ? 0 : 1; }), kOpenDenied);
  EXPECT_EQ(exit_status_under(SeccompThread::kDevice, make_directory), kDenied);
  EXPECT_EQ(exit_status_under(SeccompThread::kDevice, [] { return ::ioctl(-1, KVM_RUN, 0) < 0 ? 0 : 1; }), kDenied);
  EXPECT_EQ(exit_status_under(SeccompThread::kDevice, [] { return ::ioctl(-1, TUNSETIFF, 0) < 0 ? 0 : 1; }), kDenied);
}

}  // namespace
}  // namespace kindling::vmm
