// Seccomp allow-lists for the VMM's threads. The API thread (which also
// builds the VM on InstanceStart) gets a wider list; vCPU threads, which run
// guest-driven exit handling, get a narrow one with ioctl limited to KVM_RUN;
// virtio device threads get queue and backend I/O and no ioctl at all.
// A denied syscall raises SIGSYS; the handler names it and exits with
// ExitCode::kBadSyscall (148, as Firecracker).
//
// The lists live in seccomp_allowlists.cpp and are compiled to BPF at build
// time (vmm_seccompiler); installing one is two syscalls, no libseccomp.
#pragma once

#include "common/result.hpp"

namespace kindling::vmm {

enum class SeccompThread { kApi, kVcpu, kDevice };

// Applies to the calling thread only (threads created later inherit it).
Status install_seccomp_filter(SeccompThread which);

}  // namespace kindling::vmm
