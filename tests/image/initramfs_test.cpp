// The initramfs: a newc archive the kernel can unpack, holding init, the
// agent and every module the guest needs, in load order.
#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>

#include "image/cpio_newc.hpp"
#include "image/guest_boot.hpp"
#include "image/kernel_modules.hpp"

namespace kindling::image {
namespace {

// A modules.dep in the shape of Debian 12's cloud kernel.
constexpr const char* kModulesDep =
    "kernel/drivers/virtio/virtio_mmio.ko:\n"
    "kernel/drivers/block/virtio_blk.ko:\n"
    "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n"
    "kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n"
    "kernel/net/core/failover.ko:\n"
    "kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko: kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko kernel/net/vmw_vsock/vsock.ko\n"
    "kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko: kernel/net/vmw_vsock/vsock.ko\n"
    "kernel/net/vmw_vsock/vsock.ko:\n"
    "kernel/fs/squashfs/squashfs.ko:\n"
    "kernel/fs/overlayfs/overlay.ko:\n";

TEST(KernelModules, DependenciesComeFirstAndBuiltinsAreSkipped) {
  auto plan = plan_modules(kModulesDep, "kernel/drivers/virtio/virtio_mmio.ko\n", guest_module_names("squashfs"));
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->builtin, std::vector<std::string>{"virtio_mmio"});
  auto pos = [&](const std::string& name) {
    for (std::size_t i = 0; i < plan->load_order.size(); ++i)
      if (module_name_of(plan->load_order[i]) == name) return static_cast<int>(i);
    return -1;
  };
  EXPECT_EQ(pos("virtio_mmio"), -1);
  EXPECT_LT(pos("failover"), pos("net_failover"));
  EXPECT_LT(pos("net_failover"), pos("virtio_net"));
  EXPECT_LT(pos("vsock"), pos("vmw_vsock_virtio_transport_common"));
  EXPECT_LT(pos("vmw_vsock_virtio_transport_common"), pos("vmw_vsock_virtio_transport"));
  EXPECT_GE(pos("squashfs"), 0);
  EXPECT_GE(pos("overlay"), 0);
  EXPECT_EQ(plan->load_order.size(), 9u);  // each once
}

TEST(KernelModules, MissingModuleIsNamed) {
  auto plan = plan_modules(kModulesDep, "", {"virtio_blk", "erofs", "nosuch"});
  ASSERT_FALSE(plan);
  EXPECT_NE(plan.error().message.find("erofs, nosuch"), std::string::npos) << plan.error().message;
}

// A minimal relocatable ELF with a .modinfo section, as modpost writes it.
std::string fake_module(const std::string& modinfo) {
  const std::string shstrtab = std::string("\0.shstrtab\0.modinfo\0", 20);
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_type = ET_REL;
  eh.e_machine = EM_X86_64;
  eh.e_shentsize = sizeof(Elf64_Shdr);
  eh.e_shnum = 3;
  eh.e_shstrndx = 1;
  std::string body = shstrtab + modinfo;
  eh.e_shoff = sizeof eh + body.size();
  Elf64_Shdr sh[3]{};
  sh[1].sh_name = 1;
  sh[1].sh_offset = sizeof eh;
  sh[1].sh_size = shstrtab.size();
  sh[2].sh_name = 11;
  sh[2].sh_offset = sizeof eh + shstrtab.size();
  sh[2].sh_size = modinfo.size();
  std::string out(reinterpret_cast<const char*>(&eh), sizeof eh);
  out += body;
  out.append(reinterpret_cast<const char*>(sh), sizeof sh);
  return out;
}

TEST(KernelModules, DependsFromModinfo) {
  auto deps = modinfo_depends(fake_module(std::string("license=GPL\0depends=vsock,vmw_vsock_virtio_transport_common\0name=x\0", 67)));
  ASSERT_TRUE(deps) << deps.error().message;
  EXPECT_EQ(*deps, (std::vector<std::string>{"vsock", "vmw_vsock_virtio_transport_common"}));
  auto none = modinfo_depends(fake_module(std::string("depends=\0", 9)));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(modinfo_depends("not an elf file at all, just text......................................"));
}

TEST(KernelModules, NameOfPath) {
  EXPECT_EQ(module_name_of("kernel/drivers/block/virtio_blk.ko"), "virtio_blk");
  EXPECT_EQ(module_name_of("kernel/x/snd-hda.ko.xz"), "snd_hda");
}

TEST(Cpio, RoundTrip) {
  CpioArchive a;
  a.add_directory("dev");
  a.add_char_device("dev/console", 5, 1);
  a.add_file("init", std::string("\x7f" "ELF\0x", 6), 0755);
  a.add_symlink("bin", "usr/bin");
  std::string bytes = a.bytes(1704067200);
  EXPECT_EQ(bytes.substr(0, 6), "070701");
  EXPECT_EQ(bytes.size() % 4, 0u);
  auto entries = read_cpio_newc(bytes);
  ASSERT_TRUE(entries) << entries.error().message;
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ((*entries)[1].kind, CpioEntry::Kind::kCharDevice);
  EXPECT_EQ((*entries)[1].rdev_major, 5u);
  EXPECT_EQ((*entries)[2].name, "init");
  EXPECT_EQ((*entries)[2].mode, 0755u);
  EXPECT_EQ((*entries)[2].data, std::string("\x7f" "ELF\0x", 6));
  EXPECT_EQ((*entries)[3].data, "usr/bin");
  EXPECT_FALSE(read_cpio_newc(bytes.substr(0, bytes.size() - 200)));
  EXPECT_FALSE(read_cpio_newc("070707" + std::string(200, '0')));
}

std::string initramfs(bool with_agent, const std::string& list) {
  CpioArchive a;
  a.add_file("init", "i", 0755);
  if (with_agent) a.add_file("kindling/agent", "a", 0755);
  a.add_file("lib/modules/virtio_blk.ko", "m");
  a.add_file("lib/modules/squashfs.ko", "m");
  a.add_file("etc/kindling-modules", list);
  return a.bytes(0);
}

TEST(Initramfs, CheckFindsAgentInitAndModules) {
  EXPECT_TRUE(check_initramfs(initramfs(true, "virtio_blk.ko\nsquashfs.ko\n"), {"virtio_blk", "squashfs"}));
  auto no_agent = check_initramfs(initramfs(false, "virtio_blk.ko\n"), {"virtio_blk"});
  ASSERT_FALSE(no_agent);
  EXPECT_NE(no_agent.error().message.find("kindling/agent"), std::string::npos);
  auto unlisted = check_initramfs(initramfs(true, "virtio_blk.ko\n"), {"virtio_blk", "squashfs"});
  ASSERT_FALSE(unlisted);
  EXPECT_NE(unlisted.error().message.find("module squashfs"), std::string::npos) << unlisted.error().message;
  auto absent = check_initramfs(initramfs(true, "overlay.ko\n"), {});
  ASSERT_FALSE(absent);
  EXPECT_NE(absent.error().message.find("lib/modules/overlay.ko"), std::string::npos);
}

TEST(GuestBoot, KernelPackageFromDepends) {
  auto p = kernel_package_from_depends("linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-28-cloud-amd64\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, "linux-image-6.1.0-28-cloud-amd64");
  EXPECT_FALSE(kernel_package_from_depends("linux-image-cloud-amd64\n"));
}

}  // namespace
}  // namespace kindling::image
