// KVM ioctls whose argument ends in a flexible array. The uapi headers declare
// those arrays with __DECLARE_FLEX_ARRAY, which in C++ adds an empty struct:
// sizeof(kvm_cpuid2) becomes 12 instead of 8, so both the ioctl numbers
// (they encode the size) and the entry offsets are wrong when compiled as
// C++. We use these C-layout headers and numbers instead.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace kindling::vmm::kvm_abi {

struct CpuidHeader {  // followed by kvm_cpuid_entry2[nent]
  uint32_t nent;
  uint32_t padding;
};
struct MsrsHeader {  // followed by kvm_msr_entry[nmsrs]
  uint32_t nmsrs;
  uint32_t pad;
};
struct MsrListHeader {  // followed by uint32_t[nmsrs]
  uint32_t nmsrs;
};

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
inline constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);
inline constexpr unsigned long kGetCpuid2 = _IOWR(KVMIO, 0x91, CpuidHeader);
// kvm_xsave ends in a flexible array too: the legacy 4 KiB area only.
struct Xsave4k {
  uint32_t region[1024];
};
inline constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, Xsave4k);
inline constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, Xsave4k);

static_assert(sizeof(CpuidHeader) == 8 && sizeof(MsrsHeader) == 8 && sizeof(MsrListHeader) == 4);
static_assert(sizeof(kvm_cpuid_entry2) == 40 && sizeof(kvm_msr_entry) == 16);

}  // namespace kindling::vmm::kvm_abi
