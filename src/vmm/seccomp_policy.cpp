#include "vmm/seccomp_policy.hpp"

#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <initializer_list>

#include <fmt/format.h>

#include "vmm/exit_code.hpp"

namespace kindling::vmm {
namespace {

// Syscalls any VMM thread needs: memory for allocation, futexes for locks,
// writes for serial/log/eventfds, signals for vCPU kicks, thread exit.
constexpr std::initializer_list<int> kCommon = {
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(writev), SCMP_SYS(close), SCMP_SYS(futex),
    SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(madvise), SCMP_SYS(brk),
    SCMP_SYS(mremap), SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(gettid), SCMP_SYS(getpid),
    SCMP_SYS(tgkill), SCMP_SYS(sched_yield), SCMP_SYS(exit), SCMP_SYS(exit_group),
    SCMP_SYS(restart_syscall), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek),
    SCMP_SYS(getrandom), SCMP_SYS(fsync), SCMP_SYS(fdatasync),
};

// The API thread also accepts connections, opens files named in the
// configuration, builds the VM and starts vCPU threads.
constexpr std::initializer_list<int> kApiOnly = {
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(accept4), SCMP_SYS(recvfrom), SCMP_SYS(sendto),
    SCMP_SYS(openat), SCMP_SYS(open), SCMP_SYS(unlink), SCMP_SYS(unlinkat), SCMP_SYS(eventfd2),
    SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
    SCMP_SYS(rt_sigaction), SCMP_SYS(sigaltstack), SCMP_SYS(prctl), SCMP_SYS(sched_getaffinity),
    SCMP_SYS(statx), SCMP_SYS(fcntl), SCMP_SYS(shutdown), SCMP_SYS(dup), SCMP_SYS(pread64),
    // vCPU threads start under this filter and then narrow it with their own.
    SCMP_SYS(seccomp), SCMP_SYS(epoll_create1), SCMP_SYS(bind), SCMP_SYS(listen),
};

// The device thread: queue work and backend I/O (block files, vsock and tap
// sockets, rate-limit timers). The API thread allows these too, because the
// device thread may be started under its filter before narrowing to this one.
constexpr std::initializer_list<int> kDeviceIo = {
    SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), SCMP_SYS(pread64), SCMP_SYS(pwrite64),
    SCMP_SYS(preadv), SCMP_SYS(pwritev), SCMP_SYS(accept4), SCMP_SYS(socket), SCMP_SYS(connect),
    SCMP_SYS(recvfrom), SCMP_SYS(sendto), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(shutdown),
    SCMP_SYS(fcntl), SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime), SCMP_SYS(getsockopt), SCMP_SYS(readv),
};

#if defined(__SANITIZE_ADDRESS__)
#define KINDLING_SANITIZER_RUNTIME 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KINDLING_SANITIZER_RUNTIME 1
#endif
#endif

// Sanitizer builds only: what the ASan/UBSan runtime itself calls (probing
// memory through a pipe, reading /proc maps on reports, stack limits).
constexpr std::initializer_list<int> kSanitizerRuntime = {
    SCMP_SYS(pipe2), SCMP_SYS(pipe), SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getrlimit),
    SCMP_SYS(prlimit64), SCMP_SYS(sigaltstack), SCMP_SYS(rt_sigaction), SCMP_SYS(sched_getaffinity),
    SCMP_SYS(openat), SCMP_SYS(getdents64), SCMP_SYS(uname), SCMP_SYS(getppid), SCMP_SYS(kill),
};

std::atomic<bool> g_filter_installed{false};

void on_sigsys(int, siginfo_t* info, void*) {
  // Async-signal-safe only: format by hand, write, _exit.
  char msg[96] = "kindling-vmm: seccomp denied syscall ";
  size_t len = std::strlen(msg);
  int nr = info->si_syscall;
  char digits[12];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + nr % 10);
    nr /= 10;
  } while (nr > 0 && n < 11);
  while (n > 0) msg[len++] = digits[--n];
  msg[len++] = '\n';
  [[maybe_unused]] ssize_t w = ::write(2, msg, len);
  _exit(to_int(ExitCode::kBadSyscall));
}

Status add_all(scmp_filter_ctx ctx, std::initializer_list<int> syscalls) {
  for (int nr : syscalls) {
    if (nr < 0) continue;  // not on this architecture
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0); rc != 0) {
      return make_error(fmt::format("seccomp_rule_add({}): {}", nr, std::strerror(-rc)));
    }
  }
  return ok_status();
}

}  // namespace

Status install_seccomp_filter(SeccompThread which) {
  struct sigaction sa {};
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSYS, &sa, nullptr);

  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
  if (!ctx) return make_error("seccomp_init failed");
  Status s = add_all(ctx, kCommon);
#ifdef KINDLING_SANITIZER_RUNTIME
  if (s) s = add_all(ctx, kSanitizerRuntime);
#endif
  if (s && which != SeccompThread::kVcpu) s = add_all(ctx, kDeviceIo);
  if (s && which == SeccompThread::kDevice) {
    // Device threads issue no ioctl at all.
  } else if (s && which == SeccompThread::kApi) {
    s = add_all(ctx, kApiOnly);
    // ioctl: KVM's own (type 0xAE) and terminal probes from the logger.
    if (s && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, KVMIO << 8)) != 0) {
      s = make_error("seccomp: cannot add the KVM ioctl rule");
    }
    if (s && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, TCGETS)) != 0) {
      s = make_error("seccomp: cannot add the TCGETS rule");
    }
    // Attaching a virtio-net device to its tap at InstanceStart.
    if (s && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, TUNSETIFF)) != 0) {
      s = make_error("seccomp: cannot add the TUNSETIFF rule");
    }
  } else if (s) {
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, KVM_RUN)) != 0) {
      s = make_error("seccomp: cannot add the KVM_RUN rule");
    }
  }
  if (s) {
    if (int rc = seccomp_load(ctx); rc != 0) s = make_error(fmt::format("seccomp_load: {}", std::strerror(-rc)));
  }
  if (s) g_filter_installed = true;
  seccomp_release(ctx);
  return s;
}

}  // namespace kindling::vmm

#ifdef KINDLING_SANITIZER_RUNTIME
// LeakSanitizer's exit-time check stops the world with ptrace from a cloned
// thread, which a filtered process may not do (it would spin forever). Leak
// checks still run in the unit tests and in VMM runs with --no-seccomp.
extern "C" int __lsan_is_turned_off() { return kindling::vmm::g_filter_installed ? 1 : 0; }
#endif
