// The guest kernel's command line: the one place that says what the node
// passes to a microVM kernel (docs/image.md, "Kernel command line"), and the
// one place that reads back the two entries the initramfs init needs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace kindling::image {

// Linux's COMMAND_LINE_SIZE on x86-64, including the terminating NUL.
inline constexpr std::size_t kMaxKernelCmdline = 2048;

struct VirtioMmioWindow {
  std::uint64_t base = 0;  // guest-physical address of the 4 KiB register window
  std::uint32_t irq = 0;
};

struct GuestKernelArgs {
  std::string console = "ttyS0";      // empty: no console (fastest boot; nothing to read)
  bool quiet = true;                  // no boot messages on the console
  std::string root_device = "/dev/vda";
  std::string root_fstype = "squashfs";
  // Only for a VMM that does not announce its devices itself: kindling-vmm
  // and Firecracker append these entries on their own.
  std::vector<VirtioMmioWindow> devices;
  std::vector<std::string> extra;     // appended last, each one "key" or "key=value"
};

// The whole command line, or an error naming the bad field. Values may not
// contain whitespace, quotes or control characters (the kernel splits on
// spaces), and the result must fit kMaxKernelCmdline.
Result<std::string> guest_kernel_cmdline(const GuestKernelArgs& args);

// What the initramfs init reads back: kindling.root= and kindling.rootfstype=.
struct GuestRoot {
  std::string device;
  std::string fstype;
};
Result<GuestRoot> parse_guest_root(std::string_view cmdline);

}  // namespace kindling::image
