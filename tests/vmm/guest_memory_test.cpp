#include "vmm/memory/guest_memory.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "vmm/arch/x86/layout.hpp"

namespace kindling::vmm {
namespace {

TEST(GuestMemory, SmallMemoryIsOneRegion) {
  auto m = GuestMemory::create(16 << 20);
  ASSERT_TRUE(m);
  ASSERT_EQ(m->regions().size(), 1u);
  EXPECT_TRUE(m->contains(0, 16 << 20));
  EXPECT_FALSE(m->contains(16 << 20, 1));
  EXPECT_FALSE(m->contains((16 << 20) - 4, 8));
}

TEST(GuestMemory, LargeMemorySkipsTheMmioHole) {
  auto m = GuestMemory::create(uint64_t{4} << 30);  // MAP_NORESERVE: costs nothing until touched
  ASSERT_TRUE(m);
  ASSERT_EQ(m->regions().size(), 2u);
  EXPECT_EQ(m->regions()[1].guest_addr, layout::kMmioGapEnd);
  EXPECT_EQ(m->regions()[1].size, (uint64_t{4} << 30) - layout::kMmioGapStart);
  EXPECT_FALSE(m->contains(layout::kMmioGapStart, 1));
  EXPECT_TRUE(m->contains(layout::kMmioGapEnd, 4096));
}

TEST(GuestMemory, HostileRangesNeverWrap) {
  auto m = GuestMemory::create(1 << 20);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->slice(~uint64_t{0}, 2));
  EXPECT_FALSE(m->slice(4096, ~uint64_t{0}));
  EXPECT_FALSE(m->slice(~uint64_t{0} - 10, 20));
  uint32_t v = 0x12345678;
  ASSERT_TRUE(m->write_obj(0x1000, v));
  auto back = m->read_obj<uint32_t>(0x1000);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, v);
  EXPECT_FALSE(m->write_obj((1 << 20) - 2, v));
}

TEST(GuestMemory, RefusesZeroAndUnalignedSizes) {
  EXPECT_FALSE(GuestMemory::create(0));
  EXPECT_FALSE(GuestMemory::create(4097));
}

TEST(GuestMemory, PrivateFileMappingReadsTheFileAndKeepsWritesPrivate) {
  // The snapshot issue restores guest RAM this way: pages come from the
  // memory file on first touch, writes stay in the VM.
  char path[] = "/tmp/kindling-guest-mem-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> pattern(2 << 20);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 13);
  ASSERT_EQ(::write(fd, pattern.data(), pattern.size()), static_cast<ssize_t>(pattern.size()));
  {
    MemoryBacking backing;
    backing.kind = MemoryBacking::Kind::kFilePrivate;
    backing.fd = fd;
    auto m = GuestMemory::create(pattern.size(), backing);
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(*m->read_obj<uint8_t>(12345), pattern[12345]);
    ASSERT_TRUE(m->write_obj<uint8_t>(12345, 0));
    EXPECT_EQ(*m->read_obj<uint8_t>(12345), 0);
  }
  uint8_t on_disk = 0;
  ASSERT_EQ(::pread(fd, &on_disk, 1, 12345), 1);
  EXPECT_EQ(on_disk, pattern[12345]);
  ::close(fd);
  ::unlink(path);
}

}  // namespace
}  // namespace kindling::vmm
