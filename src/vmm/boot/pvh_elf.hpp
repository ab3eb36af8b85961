// ELF64 kernels with a Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): the
// format of the test guests, and of Linux vmlinux built with CONFIG_PVH.
#pragma once

#include "vmm/boot/kernel_image.hpp"

namespace kindling::vmm {

bool is_elf(std::span<const uint8_t> image);
// Finds the PVH entry without loading anything (used by tests and load).
Result<uint64_t> find_pvh_entry(std::span<const uint8_t> image);
Result<LoadedKernel> load_pvh_elf(const GuestMemory& mem, const KernelInputs& in);

}  // namespace kindling::vmm
