// Process exit statuses of kindling-vmm. The first ones match Firecracker's,
// so tooling that reads them works with either; the guest-caused ones are
// ours and distinct, so a caller can tell a clean guest reset (0) from a
// crashed guest.
#pragma once

namespace kindling::vmm {

enum class ExitCode : int {
  kOk = 0,                   // guest reset through the i8042, or stopped by SIGTERM/SIGINT
  kGenericError = 1,         // a VMM fault while running
  kUnexpectedError = 2,
  kBadSyscall = 148,         // seccomp killed a thread (SIGSYS)
  kBadConfiguration = 152,   // --config-file / --no-api configuration refused
  kArgParsing = 153,         // bad command line
  kGuestShutdown = 160,      // triple fault / KVM shutdown exit
  kGuestInternalError = 161, // KVM could not run the guest (e.g. unemulated instruction)
};

inline int to_int(ExitCode c) { return static_cast<int>(c); }

}  // namespace kindling::vmm
