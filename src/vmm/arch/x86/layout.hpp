// Guest-physical memory map of a kindling-vmm x86-64 machine. One place, so
// the boot code, the MP table and the devices cannot disagree.
#pragma once

#include <cstdint>

namespace kindling::vmm::layout {

// Low memory, below the kernel.
inline constexpr uint64_t kGdtAddr = 0x500;          // 64-bit Linux boot only
inline constexpr uint64_t kIdtAddr = 0x520;
inline constexpr uint64_t kPvhStartInfoAddr = 0x6000;
inline constexpr uint64_t kPvhMemmapAddr = 0x6040;
inline constexpr uint64_t kZeroPageAddr = 0x7000;     // Linux boot_params
inline constexpr uint64_t kPml4Addr = 0x9000;         // 64-bit Linux boot only
inline constexpr uint64_t kPdptAddr = 0xa000;
inline constexpr uint64_t kPdAddr = 0xb000;
inline constexpr uint64_t kCmdlineAddr = 0x20000;
inline constexpr uint64_t kCmdlineMaxSize = 2048;     // Linux COMMAND_LINE_SIZE on x86
inline constexpr uint64_t kEbdaStart = 0x9fc00;       // MP table lives here
inline constexpr uint64_t kLowRamEnd = 0xa0000;       // VGA hole above
inline constexpr uint64_t kHighMemStart = 0x100000;   // kernels load here

// The 32-bit MMIO hole: RAM beyond 3 GiB continues at 4 GiB.
inline constexpr uint64_t kMmioGapStart = 0xc0000000;
inline constexpr uint64_t kMmioGapEnd = 0x100000000;
inline constexpr uint64_t kVirtioMmioBase = 0xd0000000;  // one 4 KiB window per device
inline constexpr uint64_t kVirtioMmioWindow = 0x1000;
inline constexpr uint64_t kIoapicAddr = 0xfec00000;
inline constexpr uint64_t kLapicAddr = 0xfee00000;
// KVM needs three pages for the VMX real-mode TSS and one for the identity map;
// they sit just under the BIOS area at the top of the hole.
inline constexpr uint64_t kKvmIdentityMapAddr = 0xfeffc000;
inline constexpr uint64_t kKvmTssAddr = 0xfeffd000;

// Legacy ports and interrupt lines.
inline constexpr uint16_t kCom1Port = 0x3f8;
inline constexpr uint32_t kCom1Irq = 4;
inline constexpr uint16_t kI8042DataPort = 0x60;
inline constexpr uint16_t kI8042CommandPort = 0x64;
inline constexpr uint32_t kI8042Irq = 1;
inline constexpr uint32_t kFirstVirtioIrq = 5;

inline constexpr uint32_t kMaxVcpus = 32;

}  // namespace kindling::vmm::layout
