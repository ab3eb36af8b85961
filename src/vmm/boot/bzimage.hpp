// Linux bzImage by the 64-bit boot protocol (Documentation/arch/x86/boot.rst):
// the protected-mode kernel at 1 MiB, a zero page (boot_params) with the
// setup header copied from the image, the command line, initrd and E820 map,
// and entry at load address + 0x200 in long mode.
#pragma once

#include <cstdint>

#include "vmm/boot/kernel_image.hpp"

namespace kindling::vmm {

inline constexpr uint64_t kBootParamsSize = 4096;

// What the setup header says, checked against the file.
struct BzImageHeader {
  uint16_t protocol_version = 0;
  uint32_t setup_size = 0;       // bytes before the protected-mode kernel
  uint32_t kernel_size = 0;      // bytes of the protected-mode kernel
  uint32_t init_size = 0;        // memory the kernel needs at its load address
  uint32_t initrd_addr_max = 0;
  uint32_t cmdline_size = 0;
  uint16_t xloadflags = 0;
  uint8_t loadflags = 0;
  bool relocatable = false;
  uint64_t pref_address = 0;
};

// Boot-params offsets the loader fills (from arch/x86/include/uapi/asm/bootparam.h).
namespace zero_page {
inline constexpr size_t kExtRamdiskImage = 0x0c0, kExtRamdiskSize = 0x0c4, kExtCmdLinePtr = 0x0c8;
inline constexpr size_t kE820Entries = 0x1e8, kSetupHeader = 0x1f1, kSetupSects = 0x1f1, kBootFlag = 0x1fe;
inline constexpr size_t kHeaderMagic = 0x202, kVersion = 0x206, kTypeOfLoader = 0x210, kLoadFlags = 0x211;
inline constexpr size_t kRamdiskImage = 0x218, kRamdiskSize = 0x21c, kHeapEndPtr = 0x224, kCmdLinePtr = 0x228;
inline constexpr size_t kInitrdAddrMax = 0x22c, kRelocatable = 0x234, kXloadflags = 0x236, kCmdlineSize = 0x238;
inline constexpr size_t kPrefAddress = 0x258, kInitSize = 0x260, kE820Table = 0x2d0;
inline constexpr size_t kE820MaxEntries = 128;
}  // namespace zero_page

bool is_bzimage(std::span<const uint8_t> image);
Result<BzImageHeader> parse_bzimage_header(std::span<const uint8_t> image);
Result<LoadedKernel> load_bzimage(const GuestMemory& mem, const KernelInputs& in);

}  // namespace kindling::vmm
