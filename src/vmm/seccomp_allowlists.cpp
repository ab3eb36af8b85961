// vmm_seccompiler: the VMM's seccomp allow-lists, compiled to classic BPF at
// build time (as Firecracker's seccompiler does). Prints a C++ header with one
// sock_filter array per thread kind; seccomp_policy.cpp embeds it and
// installs it with two raw syscalls. So kindling-vmm neither links libseccomp
// nor spends a few hundred microseconds building filters on its way to API
// ready, and every vCPU thread starts under its filter just as fast.
//
//   vmm_seccompiler [--sanitizer-runtime] OUTPUT.inc
//
// --sanitizer-runtime adds what the ASan/UBSan runtime calls (sanitizer
// builds only).
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

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
    // Snapshots: sizing the memory file; the userfaultfd restore backend
    // (its handler thread starts under this filter, see below).
    SCMP_SYS(ftruncate), SCMP_SYS(userfaultfd),
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

// Sanitizer builds only: what the ASan/UBSan runtime itself calls (probing
// memory through a pipe, reading /proc maps on reports, stack limits).
constexpr std::initializer_list<int> kSanitizerRuntime = {
    SCMP_SYS(pipe2), SCMP_SYS(pipe), SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getrlimit),
    SCMP_SYS(prlimit64), SCMP_SYS(sigaltstack), SCMP_SYS(rt_sigaction), SCMP_SYS(sched_getaffinity),
    SCMP_SYS(openat), SCMP_SYS(getdents64), SCMP_SYS(uname), SCMP_SYS(getppid), SCMP_SYS(kill),
};

enum class Thread { kApi, kVcpu, kDevice };

bool add_all(scmp_filter_ctx ctx, std::initializer_list<int> syscalls) {
  for (int nr : syscalls) {
    if (nr < 0) continue;  // not on this architecture
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0); rc != 0) {
      std::fprintf(stderr, "vmm_seccompiler: seccomp_rule_add(%d): %s\n", nr, std::strerror(-rc));
      return false;
    }
  }
  return true;
}

// A denied syscall raises SIGSYS (SCMP_ACT_TRAP); seccomp_policy.cpp's
// handler names it and exits with status 148.
bool add_rules(scmp_filter_ctx ctx, Thread which, bool sanitizer_runtime) {
  if (!add_all(ctx, kCommon)) return false;
  if (sanitizer_runtime && !add_all(ctx, kSanitizerRuntime)) return false;
  if (which != Thread::kVcpu && !add_all(ctx, kDeviceIo)) return false;
  // Device threads issue no ioctl at all.
  if (which == Thread::kDevice) return true;
  if (which == Thread::kApi) {
    if (!add_all(ctx, kApiOnly)) return false;
    // ioctl: KVM's own (type 0xAE), userfaultfd's (type 0xAA: UFFDIO_API,
    // REGISTER, COPY, ZEROPAGE for the snapshot restore thread, which
    // inherits this filter), and TUNSETIFF to attach a virtio-net device to
    // its tap at InstanceStart. The logger writes plain lines and never
    // probes for a terminal (TCGETS).
    return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, KVMIO << 8)) == 0 &&
           seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, 0xAA << 8)) == 0 &&
           seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, TUNSETIFF)) == 0;
  }
  // vCPU threads: guest-driven exit handling may only re-enter the guest.
  return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, KVM_RUN)) == 0;
}

// libseccomp only exports to a descriptor: through a memfd, back to memory.
bool compile(Thread which, bool sanitizer_runtime, std::vector<sock_filter>& program) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
  if (!ctx) return false;
  bool ok = add_rules(ctx, which, sanitizer_runtime);
  int fd = static_cast<int>(::syscall(SYS_memfd_create, "vmm-seccompiler", MFD_CLOEXEC));
  ok = ok && fd >= 0 && seccomp_export_bpf(ctx, fd) == 0;
  seccomp_release(ctx);
  std::string bytes;
  if (ok) {
    off_t size = ::lseek(fd, 0, SEEK_END);
    ok = size > 0 && size % sizeof(sock_filter) == 0 && ::lseek(fd, 0, SEEK_SET) == 0;
    if (ok) bytes.resize(static_cast<size_t>(size));
    size_t got = 0;
    while (ok && got < bytes.size()) {
      ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
      ok = n > 0;
      if (ok) got += static_cast<size_t>(n);
    }
  }
  if (fd >= 0) ::close(fd);
  if (!ok) return false;
  program.resize(bytes.size() / sizeof(sock_filter));
  std::memcpy(program.data(), bytes.data(), bytes.size());
  return true;
}

void print_array(std::FILE* out, const char* name, const std::vector<sock_filter>& program) {
  std::fprintf(out, "inline constexpr sock_filter %s[] = {\n", name);
  for (const sock_filter& f : program) {
    std::fprintf(out, "    {0x%04x, %u, %u, 0x%08x},\n", f.code, f.jt, f.jf, f.k);
  }
  std::fprintf(out, "};\n");
}

}  // namespace

int main(int argc, char** argv) {
  bool sanitizer_runtime = false;
  const char* out_path = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--sanitizer-runtime") {
      sanitizer_runtime = true;
    } else if (!out_path && argv[i][0] != '-') {
      out_path = argv[i];
    } else {
      out_path = nullptr;
      break;
    }
  }
  if (!out_path) {
    std::fprintf(stderr, "usage: vmm_seccompiler [--sanitizer-runtime] OUTPUT.inc\n");
    return 2;
  }
  std::vector<sock_filter> api, vcpu, device;
  if (!compile(Thread::kApi, sanitizer_runtime, api) || !compile(Thread::kVcpu, sanitizer_runtime, vcpu) ||
      !compile(Thread::kDevice, sanitizer_runtime, device)) {
    std::fprintf(stderr, "vmm_seccompiler: cannot compile the filters\n");
    return 1;
  }
  std::FILE* out = std::fopen(out_path, "w");
  if (!out) {
    std::fprintf(stderr, "vmm_seccompiler: %s: %s\n", out_path, std::strerror(errno));
    return 1;
  }
  std::fprintf(out, "// Generated at build time by vmm_seccompiler (src/vmm/seccomp_allowlists.cpp). Do not edit.\n");
  std::fprintf(out, "#define KINDLING_SECCOMP_FILTERS_WITH_SANITIZER_RUNTIME %d\n", sanitizer_runtime ? 1 : 0);
  print_array(out, "kApiThreadFilter", api);
  print_array(out, "kVcpuThreadFilter", vcpu);
  print_array(out, "kDeviceThreadFilter", device);
  if (std::fclose(out) != 0) {
    std::remove(out_path);
    return 1;
  }
  return 0;
}
