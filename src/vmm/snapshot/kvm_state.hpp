// Reads and writes the KVM side of a snapshot: per-vCPU and per-VM state.
// Capture needs the vCPUs parked outside KVM_RUN (MicroVm::pause); restore
// runs before the vCPU threads start. Functions take fds so they stay free of
// the threading in kvm/vcpu.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.hpp"
#include "vmm/snapshot/snapshot_format.hpp"

namespace kindling::vmm {

// `msr_indices`: KVM_GET_MSR_INDEX_LIST; only those KVM will read back are kept.
Result<VcpuState> capture_vcpu_state(int vcpu_fd, const std::vector<uint32_t>& msr_indices, bool has_xsave, bool has_xcrs);
Status restore_vcpu_state(int vcpu_fd, const VcpuState& s);

Result<VmState> capture_vm_state(int vm_fd);
Status restore_vm_state(int vm_fd, const VmState& s);

}  // namespace kindling::vmm
