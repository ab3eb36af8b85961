// Loading a guest kernel: the format is recognised from its bytes (ELF with a
// PVH note, or a Linux bzImage) and loaded by the matching boot protocol.
// Everything here treats the image as untrusted input: every offset and size
// it contains is checked before use.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace kindling::vmm {

struct LoadedKernel {
  enum class Protocol { kPvh, kLinux64 };
  Protocol protocol = Protocol::kPvh;
  uint64_t entry = 0;           // guest-physical entry point
  uint64_t boot_info_addr = 0;  // hvm_start_info (PVH) or boot_params (Linux)
};

struct KernelInputs {
  std::span<const uint8_t> kernel;
  std::string_view cmdline;
  std::span<const uint8_t> initrd;  // empty: none
};

Result<LoadedKernel> load_kernel(const GuestMemory& mem, const KernelInputs& in);

// Shared by both protocols: the command line at layout::kCmdlineAddr.
Status write_cmdline(const GuestMemory& mem, std::string_view cmdline);
// Places the initrd as high in low RAM as `max_addr` allows, above `floor`.
Result<uint64_t> place_initrd(const GuestMemory& mem, std::span<const uint8_t> initrd, uint64_t floor, uint64_t max_addr);

// Reads a whole file, refusing one larger than `max_size` bytes.
Result<std::string> read_file_bounded(const std::string& path, uint64_t max_size, const char* what);

}  // namespace kindling::vmm
