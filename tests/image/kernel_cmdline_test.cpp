// The guest kernel command line: what the node passes, in one place.
#include <gtest/gtest.h>

#include "image/kernel_cmdline.hpp"

namespace kindling::image {
namespace {

bool has_word(const std::string& line, const std::string& word) {
  return (" " + line + " ").find(" " + word + " ") != std::string::npos;
}

TEST(KernelCmdline, DefaultHasConsoleQuietAndI8042Flags) {
  auto line = guest_kernel_cmdline({});
  ASSERT_TRUE(line) << line.error().message;
  for (const char* w : {"console=ttyS0", "quiet", "reboot=k", "panic=1", "pci=off", "i8042.noaux", "i8042.nomux",
                        "i8042.nopnp", "i8042.dumbkbd", "kindling.root=/dev/vda", "kindling.rootfstype=squashfs"})
    EXPECT_TRUE(has_word(*line, w)) << w << " missing from: " << *line;
  // Modules are loaded by the initramfs: a nomodule would break the guest.
  EXPECT_FALSE(has_word(*line, "nomodule"));
  // The root is mounted by the init, never by the kernel itself.
  EXPECT_EQ(line->find(" root="), std::string::npos);
  EXPECT_EQ(line->find("virtio_mmio.device"), std::string::npos);
}

TEST(KernelCmdline, NoConsoleAndNotQuiet) {
  GuestKernelArgs a;
  a.console = "";
  a.quiet = false;
  auto line = guest_kernel_cmdline(a);
  ASSERT_TRUE(line);
  EXPECT_EQ(line->find("console="), std::string::npos);
  EXPECT_FALSE(has_word(*line, "quiet"));
}

TEST(KernelCmdline, VirtioMmioDevicesInFirecrackerSyntax) {
  GuestKernelArgs a;
  a.devices = {{0xd0000000, 5}, {0xd0001000, 6}};
  auto line = guest_kernel_cmdline(a);
  ASSERT_TRUE(line) << line.error().message;
  EXPECT_TRUE(has_word(*line, "virtio_mmio.device=4K@0xd0000000:5")) << *line;
  EXPECT_TRUE(has_word(*line, "virtio_mmio.device=4K@0xd0001000:6")) << *line;
}

TEST(KernelCmdline, RejectsWhatWouldSplitOrMisplace) {
  GuestKernelArgs a;
  a.extra = {"init=/bin/sh rw"};
  EXPECT_FALSE(guest_kernel_cmdline(a));
  a = {};
  a.root_device = "vda";
  EXPECT_FALSE(guest_kernel_cmdline(a));
  a = {};
  a.root_fstype = "ext4";
  auto bad = guest_kernel_cmdline(a);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("ext4"), std::string::npos);
  a = {};
  a.devices = {{0xd0000800, 5}};
  EXPECT_FALSE(guest_kernel_cmdline(a));
  a = {};
  a.devices = {{0xd0000000, 0}};
  EXPECT_FALSE(guest_kernel_cmdline(a));
}

TEST(KernelCmdline, LengthLimit) {
  GuestKernelArgs a;
  a.extra = {"x=" + std::string(1800, 'a')};
  EXPECT_TRUE(guest_kernel_cmdline(a));
  a.extra = {"x=" + std::string(2100, 'a')};
  auto too_long = guest_kernel_cmdline(a);
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().message.find("at most 2047"), std::string::npos) << too_long.error().message;
}

TEST(KernelCmdline, InitReadsBackWhatTheGeneratorWrote) {
  GuestKernelArgs a;
  a.root_device = "/dev/vdb";
  a.root_fstype = "erofs";
  auto line = guest_kernel_cmdline(a);
  ASSERT_TRUE(line);
  // The VMM appends its own entries; /proc/cmdline ends with a newline.
  auto root = parse_guest_root(*line + " virtio_mmio.device=4K@0xd0000000:5\n");
  ASSERT_TRUE(root) << root.error().message;
  EXPECT_EQ(root->device, "/dev/vdb");
  EXPECT_EQ(root->fstype, "erofs");
  EXPECT_FALSE(parse_guest_root("console=ttyS0 quiet\n"));
}

}  // namespace
}  // namespace kindling::image
