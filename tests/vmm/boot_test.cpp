// Boot structures built from real images: the PVH test guests, a synthetic
// bzImage with a known header, and (when one is present) a real Debian kernel.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "vmm/arch/x86/layout.hpp"
#include "vmm/arch/x86/mptable.hpp"
#include "vmm/boot/bzimage.hpp"
#include "vmm/boot/kernel_image.hpp"
#include "vmm/boot/pvh_elf.hpp"

namespace kindling::vmm {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
std::span<const uint8_t> bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }
std::string guest_elf(const char* name) { return slurp(std::string(KINDLING_GUEST_DIR) + "/" + name + ".elf"); }

template <typename T>
T at(const GuestMemory& m, uint64_t addr) {
  return *m.read_obj<T>(addr);
}

TEST(PvhBoot, LoadsTestGuestAndBuildsStartInfo) {
  auto mem = GuestMemory::create(64 << 20);
  ASSERT_TRUE(mem);
  std::string elf = guest_elf("hello");
  ASSERT_FALSE(elf.empty());
  auto k = load_kernel(*mem, {bytes(elf), "console=ttyS0", {}});
  ASSERT_TRUE(k) << k.error().message;
  EXPECT_EQ(k->protocol, LoadedKernel::Protocol::kPvh);
  EXPECT_EQ(k->entry, 0x100000u);
  EXPECT_EQ(at<uint32_t>(*mem, layout::kPvhStartInfoAddr), 0x336ec578u);
  EXPECT_EQ(at<uint64_t>(*mem, layout::kPvhStartInfoAddr + 24), layout::kCmdlineAddr);
  EXPECT_EQ(at<uint64_t>(*mem, layout::kPvhStartInfoAddr + 40), layout::kPvhMemmapAddr);
  uint32_t entries = at<uint32_t>(*mem, layout::kPvhStartInfoAddr + 48);
  ASSERT_EQ(entries, 3u);  // low RAM, EBDA reserved, RAM from 1 MiB
  EXPECT_EQ(at<uint64_t>(*mem, layout::kPvhMemmapAddr + 2 * 24), 0x100000u);
  EXPECT_EQ(at<uint64_t>(*mem, layout::kPvhMemmapAddr + 2 * 24 + 8), (64u << 20) - 0x100000u);
  char cmdline[14] = {};
  ASSERT_TRUE(mem->read(layout::kCmdlineAddr, std::span(reinterpret_cast<uint8_t*>(cmdline), 13)));
  EXPECT_STREQ(cmdline, "console=ttyS0");
  // The entry stub really is at the entry: `cli` (0xfa) first.
  EXPECT_EQ(at<uint8_t>(*mem, 0x100000), 0xfa);
}

TEST(PvhBoot, RefusesBrokenElves) {
  auto mem = GuestMemory::create(64 << 20);
  ASSERT_TRUE(mem);
  std::string elf = guest_elf("hello");
  EXPECT_FALSE(load_kernel(*mem, {bytes(elf.substr(0, 40)), "", {}}));
  EXPECT_FALSE(load_kernel(*mem, {bytes(elf.substr(0, 200)), "", {}}));
  std::string no_note = elf;
  no_note[no_note.find(std::string("Xen\0", 4))] = 'Q';
  auto r = load_kernel(*mem, {bytes(no_note), "", {}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("PVH"), std::string::npos);
  // Program header offset pointing past the end of the file.
  std::string bad_phoff = elf;
  uint64_t huge = ~uint64_t{0} - 8;
  std::memcpy(bad_phoff.data() + 32, &huge, 8);
  EXPECT_FALSE(load_kernel(*mem, {bytes(bad_phoff), "", {}}));
  // A segment that would land beyond guest memory.
  auto small = GuestMemory::create(1 << 20);
  ASSERT_TRUE(small);
  EXPECT_FALSE(load_kernel(*small, {bytes(elf), "", {}}));
  EXPECT_FALSE(load_kernel(*mem, {bytes(elf), std::string(layout::kCmdlineMaxSize, 'x'), {}}));
}

TEST(PvhBoot, InitrdBecomesAModule) {
  auto mem = GuestMemory::create(64 << 20);
  ASSERT_TRUE(mem);
  std::string elf = guest_elf("hello");
  std::string initrd(10000, 'i');
  auto k = load_kernel(*mem, {bytes(elf), "", bytes(initrd)});
  ASSERT_TRUE(k) << k.error().message;
  EXPECT_EQ(at<uint32_t>(*mem, layout::kPvhStartInfoAddr + 12), 1u);
  uint64_t modlist = at<uint64_t>(*mem, layout::kPvhStartInfoAddr + 16);
  uint64_t addr = at<uint64_t>(*mem, modlist);
  EXPECT_EQ(at<uint64_t>(*mem, modlist + 8), initrd.size());
  EXPECT_EQ(addr % 4096, 0u);
  EXPECT_EQ(at<uint8_t>(*mem, addr), 'i');
}

TEST(MpTable, ChecksumsAndEntriesForEveryCpuCount) {
  for (uint32_t n : {1u, 2u, 7u, 32u}) {
    auto t = build_mptable(layout::kEbdaStart, n);
    ASSERT_TRUE(t);
    const auto& b = *t;
    ASSERT_LE(b.size(), layout::kLowRamEnd - layout::kEbdaStart);
    uint8_t sum = 0;
    for (int i = 0; i < 16; ++i) sum = static_cast<uint8_t>(sum + b[i]);
    EXPECT_EQ(sum, 0);
    EXPECT_EQ(std::memcmp(b.data(), "_MP_", 4), 0);
    uint16_t len, count;
    std::memcpy(&len, &b[16 + 4], 2);
    std::memcpy(&count, &b[16 + 34], 2);
    sum = 0;
    for (int i = 0; i < len; ++i) sum = static_cast<uint8_t>(sum + b[16 + i]);
    EXPECT_EQ(sum, 0);
    EXPECT_EQ(count, n + 1 + 1 + 16 + 2);
    EXPECT_EQ(b[16 + 44], 0);      // first entry: processor
    EXPECT_EQ(b[16 + 44 + 3], 3);  // enabled + BSP
  }
  EXPECT_FALSE(build_mptable(layout::kEbdaStart, 0));
  EXPECT_FALSE(build_mptable(layout::kEbdaStart, 33));
}

// A minimal image with a real setup header layout (boot protocol 2.15).
std::string synthetic_bzimage(uint32_t payload_size) {
  std::string img(5 * 512 + payload_size, '\0');
  img[zero_page::kSetupSects] = 4;
  img[zero_page::kBootFlag] = 0x55;
  img[zero_page::kBootFlag + 1] = static_cast<char>(0xaa);
  img[0x200] = static_cast<char>(0xeb);
  img[0x201] = 0x6a;  // header runs to 0x26c
  std::memcpy(&img[zero_page::kHeaderMagic], "HdrS", 4);
  uint16_t version = 0x020f;
  std::memcpy(&img[zero_page::kVersion], &version, 2);
  img[zero_page::kLoadFlags] = 1;
  uint32_t initrd_max = 0x7fffffff, cmdline_size = 2047, init_size = payload_size * 2;
  std::memcpy(&img[zero_page::kInitrdAddrMax], &initrd_max, 4);
  uint16_t xlf = 1;
  std::memcpy(&img[zero_page::kXloadflags], &xlf, 2);
  std::memcpy(&img[zero_page::kCmdlineSize], &cmdline_size, 4);
  std::memcpy(&img[zero_page::kInitSize], &init_size, 4);
  for (uint32_t i = 0; i < payload_size; ++i) img[5 * 512 + i] = static_cast<char>(i * 7);
  return img;
}

TEST(BzImageBoot, BuildsBootParamsAndE820) {
  auto mem = GuestMemory::create(128 << 20);
  ASSERT_TRUE(mem);
  std::string img = synthetic_bzimage(300000);
  std::string initrd(50000, 'r');
  auto k = load_kernel(*mem, {bytes(img), "console=ttyS0 panic=1", bytes(initrd)});
  ASSERT_TRUE(k) << k.error().message;
  EXPECT_EQ(k->protocol, LoadedKernel::Protocol::kLinux64);
  EXPECT_EQ(k->entry, 0x100200u);
  EXPECT_EQ(k->boot_info_addr, layout::kZeroPageAddr);
  const uint64_t zp = layout::kZeroPageAddr;
  EXPECT_EQ(at<uint8_t>(*mem, zp + zero_page::kTypeOfLoader), 0xff);
  EXPECT_EQ(at<uint32_t>(*mem, zp + zero_page::kCmdLinePtr), layout::kCmdlineAddr);
  EXPECT_EQ(std::memcmp(mem->slice(zp + zero_page::kHeaderMagic, 4)->data(), "HdrS", 4), 0);
  EXPECT_TRUE(at<uint8_t>(*mem, zp + zero_page::kLoadFlags) & 0x80);  // CAN_USE_HEAP
  uint32_t rd = at<uint32_t>(*mem, zp + zero_page::kRamdiskImage);
  EXPECT_EQ(at<uint32_t>(*mem, zp + zero_page::kRamdiskSize), initrd.size());
  EXPECT_GE(rd, 0x100000u + 600000u);
  EXPECT_EQ(at<uint8_t>(*mem, rd), 'r');
  ASSERT_EQ(at<uint8_t>(*mem, zp + zero_page::kE820Entries), 3);
  EXPECT_EQ(at<uint64_t>(*mem, zp + zero_page::kE820Table + 2 * 20), 0x100000u);
  EXPECT_EQ(at<uint32_t>(*mem, zp + zero_page::kE820Table + 1 * 20 + 16), 2u);  // EBDA reserved
  EXPECT_EQ(at<uint8_t>(*mem, 0x100000 + 1), 7);  // payload copied to 1 MiB
}

TEST(BzImageBoot, RefusesOldOrBrokenHeaders) {
  auto mem = GuestMemory::create(64 << 20);
  ASSERT_TRUE(mem);
  std::string old = synthetic_bzimage(4096);
  uint16_t v = 0x0206;
  std::memcpy(&old[zero_page::kVersion], &v, 2);
  EXPECT_FALSE(load_kernel(*mem, {bytes(old), "", {}}));
  std::string no64 = synthetic_bzimage(4096);
  no64[zero_page::kXloadflags] = 0;
  EXPECT_FALSE(load_kernel(*mem, {bytes(no64), "", {}}));
  std::string truncated = synthetic_bzimage(4096).substr(0, 5 * 512);
  EXPECT_FALSE(load_kernel(*mem, {bytes(truncated), "", {}}));
  std::string huge = synthetic_bzimage(4096);
  uint32_t init_size = 0xfff00000;
  std::memcpy(&huge[zero_page::kInitSize], &init_size, 4);
  auto r = load_kernel(*mem, {bytes(huge), "", {}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("too small"), std::string::npos);
}

// A real Debian kernel, when the test environment provides one: set
// KINDLING_TEST_BZIMAGE, or extract linux-image-*-cloud-amd64 into
// /tmp/kindling-test-kernel (see docs/vmm-design.md). Skipped, and reported as
// skipped, otherwise.
TEST(BzImageBoot, RealDebianKernelHeader) {
  std::string path;
  if (const char* env = std::getenv("KINDLING_TEST_BZIMAGE")) path = env;
  if (path.empty()) {
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator("/tmp/kindling-test-kernel/boot", ec)) {
      if (e.path().filename().string().rfind("vmlinuz-", 0) == 0) path = e.path();
    }
  }
  if (path.empty()) GTEST_SKIP() << "no Debian kernel available (KINDLING_TEST_BZIMAGE unset)";
  std::string img = slurp(path);
  auto h = parse_bzimage_header(bytes(img));
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_GE(h->protocol_version, 0x020f);
  EXPECT_TRUE(h->relocatable);
  EXPECT_EQ(h->cmdline_size, 2047u);
  auto mem = GuestMemory::create(256 << 20);
  ASSERT_TRUE(mem);
  auto k = load_kernel(*mem, {bytes(img), "console=ttyS0 reboot=k panic=1", {}});
  ASSERT_TRUE(k) << k.error().message;
  EXPECT_EQ(k->entry, 0x100200u);
  EXPECT_EQ(at<uint8_t>(*mem, layout::kZeroPageAddr + zero_page::kE820Entries), 3);
  EXPECT_EQ(at<uint16_t>(*mem, layout::kZeroPageAddr + zero_page::kVersion), h->protocol_version);
  EXPECT_EQ(std::memcmp(mem->slice(0x100000, 64)->data(), img.data() + h->setup_size, 64), 0);
}

}  // namespace
}  // namespace kindling::vmm
