#include "vmm/seccomp_policy.hpp"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <iterator>

#include <fmt/format.h>

#include "vmm/exit_code.hpp"

namespace kindling::vmm {
namespace {

// kApiThreadFilter, kVcpuThreadFilter, kDeviceThreadFilter: the allow-lists of
// seccomp_allowlists.cpp, compiled to BPF by vmm_seccompiler at build time.
#include "vmm/seccomp_filters.inc"

#if defined(__SANITIZE_ADDRESS__)
#define KINDLING_SANITIZER_RUNTIME 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KINDLING_SANITIZER_RUNTIME 1
#endif
#endif

// The filters must match the build: a sanitizer runtime makes syscalls of its
// own (KINDLING_SANITIZE passes --sanitizer-runtime to vmm_seccompiler).
#if defined(KINDLING_SANITIZER_RUNTIME) && !KINDLING_SECCOMP_FILTERS_WITH_SANITIZER_RUNTIME
#error "sanitizer build with filters compiled without --sanitizer-runtime"
#endif

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

}  // namespace

Status install_seccomp_filter(SeccompThread which) {
  struct sigaction sa {};
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSYS, &sa, nullptr);

  sock_fprog prog{};
  switch (which) {
    case SeccompThread::kApi:
      prog.len = static_cast<unsigned short>(std::size(kApiThreadFilter));
      prog.filter = const_cast<sock_filter*>(kApiThreadFilter);
      break;
    case SeccompThread::kVcpu:
      prog.len = static_cast<unsigned short>(std::size(kVcpuThreadFilter));
      prog.filter = const_cast<sock_filter*>(kVcpuThreadFilter);
      break;
    case SeccompThread::kDevice:
      prog.len = static_cast<unsigned short>(std::size(kDeviceThreadFilter));
      prog.filter = const_cast<sock_filter*>(kDeviceThreadFilter);
      break;
    default:
      return make_error("seccomp: unknown thread kind");
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return make_error(fmt::format("prctl(PR_SET_NO_NEW_PRIVS): {}", std::strerror(errno)));
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) return make_error(fmt::format("seccomp: {}", std::strerror(errno)));
  g_filter_installed = true;
  return ok_status();
}

}  // namespace kindling::vmm

#ifdef KINDLING_SANITIZER_RUNTIME
// LeakSanitizer's exit-time check stops the world with ptrace from a cloned
// thread, which a filtered process may not do (it would spin forever). Leak
// checks still run in the unit tests and in VMM runs with --no-seccomp.
extern "C" int __lsan_is_turned_off() { return kindling::vmm::g_filter_installed ? 1 : 0; }
#endif
