// Seccomp allow-lists for the VMM's threads. The API thread (which also
// builds the VM on InstanceStart) gets a wider list; vCPU threads, which run
// guest-driven exit handling, get a narrow one with ioctl limited to KVM_RUN.
// A denied syscall raises SIGSYS; the handler names it and exits with
// ExitCode::kBadSyscall (148, as Firecracker).
#pragma once

#include "common/result.hpp"

namespace kindling::vmm {

enum class SeccompThread { kApi, kVcpu, kDevice };

// Applies to the calling thread only (threads created later inherit it).
Status install_seccomp_filter(SeccompThread which);

}  // namespace kindling::vmm
