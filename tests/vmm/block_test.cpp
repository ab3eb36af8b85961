// virtio-blk against a guest memory image and a temporary file: requests
// parsed and checked before any I/O, read-only enforced in the device, and
// malformed chains failing the device instead of touching the host.
#include "vmm/devices/virtio_block/block.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

namespace kindling::vmm {
namespace {

constexpr uint64_t kDesc = 0x1000, kAvail = 0x2000, kUsed = 0x3000, kHdr = 0x10000, kData = 0x20000, kStatus = 0x30000;

struct Hdr {
  uint32_t type, reserved;
  uint64_t sector;
};

class BlockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kindling-blk-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ::close(fd);
    path_ = tmpl;
    std::ofstream(path_) << std::string(64 * 1024, 'A');
  }
  void TearDown() override { ::unlink(path_.c_str()); }

  std::shared_ptr<VirtioBlock> open(bool read_only) {
    auto dev = VirtioBlock::open(path_, read_only, true, "disk0").value();
    VirtioActivation a;
    a.memory = &mem;
    a.acked_features = kVirtioFVersion1 | kVirtioFIndirectDesc;
    a.queues = {VirtqueueConfig{16, 16, true, kDesc, kAvail, kUsed}};
    a.signal_used = [this] { ++interrupts; };
    a.fail = [this](const std::string& why) { failure = why; };
    dev->activate(a);
    return dev;
  }
  // header + data + status as three descriptors; returns the status byte.
  uint8_t submit(VirtioBlock& dev, uint32_t type, uint64_t sector, uint32_t len, bool data_writable) {
    (void)mem.write_obj(kHdr, Hdr{type, 0, sector});
    (void)mem.write_obj<uint8_t>(kStatus, 0xff);
    (void)mem.write_obj(kDesc, VirtqDesc{kHdr, 16, kVirtqDescFNext, 1});
    (void)mem.write_obj(kDesc + 16, VirtqDesc{kData, len, static_cast<uint16_t>(kVirtqDescFNext | (data_writable ? kVirtqDescFWrite : 0)), 2});
    (void)mem.write_obj(kDesc + 32, VirtqDesc{kStatus, 1, kVirtqDescFWrite, 0});
    (void)mem.write_obj<uint16_t>(kAvail + 4 + 2 * (avail_ % 16), 0);
    (void)mem.write_obj<uint16_t>(kAvail + 2, ++avail_);
    dev.queue_notify(0);
    return *mem.read_obj<uint8_t>(kStatus);
  }
  std::string file() {
    std::ifstream f(path_);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

  GuestMemory mem = GuestMemory::create(1 << 20).value();
  std::string path_;
  uint16_t avail_ = 0;
  int interrupts = 0;
  std::string failure;
};

TEST_F(BlockTest, ReadWriteFlushGetIdAndCapacity) {
  auto dev = open(false);
  EXPECT_EQ(dev->capacity_sectors(), 128u);
  std::memset(mem.slice(kData, 1024)->data(), 'B', 1024);
  EXPECT_EQ(submit(*dev, kBlkTOut, 2, 1024, false), kBlkSOk);
  EXPECT_EQ(file().substr(1024, 1024), std::string(1024, 'B'));
  EXPECT_EQ(file().substr(0, 1024), std::string(1024, 'A'));
  std::memset(mem.slice(kData, 512)->data(), 0, 512);
  EXPECT_EQ(submit(*dev, kBlkTIn, 3, 512, true), kBlkSOk);
  EXPECT_EQ(*mem.read_obj<uint8_t>(kData), 'B');
  EXPECT_EQ(*mem.read_obj<uint32_t>(kUsed + 4 + 8 * 1 + 4), 513u);  // used len: data + status
  EXPECT_EQ(submit(*dev, kBlkTFlush, 0, 0, true), kBlkSOk);
  EXPECT_EQ(submit(*dev, kBlkTGetId, 0, 20, true), kBlkSOk);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(mem.slice(kData, 5)->data()), 5), std::string("disk0", 5));
  EXPECT_EQ(failure, "");
  EXPECT_GT(interrupts, 0);
}

TEST_F(BlockTest, ReadOnlyDiskRefusesWritesWithoutTouchingTheFile) {
  auto dev = open(true);
  EXPECT_TRUE(dev->device_features() & kVirtioBlkFRo);
  std::memset(mem.slice(kData, 512)->data(), 'X', 512);
  EXPECT_EQ(submit(*dev, kBlkTOut, 0, 512, false), kBlkSIoErr);
  EXPECT_EQ(file(), std::string(64 * 1024, 'A'));
  EXPECT_EQ(submit(*dev, kBlkTIn, 0, 512, true), kBlkSOk);
}

TEST_F(BlockTest, OutOfRangeMisalignedAndUnknownRequests) {
  auto dev = open(false);
  EXPECT_EQ(submit(*dev, kBlkTIn, 128, 512, true), kBlkSIoErr);           // first sector past the end
  EXPECT_EQ(submit(*dev, kBlkTIn, 127, 1024, true), kBlkSIoErr);          // runs past the end
  EXPECT_EQ(submit(*dev, kBlkTIn, ~0ull, 512, true), kBlkSIoErr);         // sector * 512 would wrap
  EXPECT_EQ(submit(*dev, kBlkTOut, 0, 100, false), kBlkSIoErr);           // not whole sectors
  EXPECT_EQ(submit(*dev, 77, 0, 512, true), kBlkSUnsupp);
  EXPECT_EQ(failure, "");
  EXPECT_EQ(file(), std::string(64 * 1024, 'A'));
}

TEST_F(BlockTest, ChainWithoutStatusByteFailsTheDevice) {
  auto dev = open(false);
  (void)mem.write_obj(kHdr, Hdr{kBlkTIn, 0, 0});
  (void)mem.write_obj(kDesc, VirtqDesc{kHdr, 16, 0, 0});  // header only
  (void)mem.write_obj<uint16_t>(kAvail + 4, 0);
  (void)mem.write_obj<uint16_t>(kAvail + 2, 1);
  dev->queue_notify(0);
  EXPECT_NE(failure.find("status byte"), std::string::npos);
  EXPECT_TRUE(dev->failed());
}

// The limiter sees one op per request and the data bytes of reads/writes;
// a refused request waits in the device and is served on retry().
TEST_F(BlockTest, ThrottledRequestIsDeferredThenServed) {
  std::vector<uint64_t> asked;
  bool allow = false;
  BlockBacking b;
  b.file.reset(::open(path_.c_str(), O_RDWR | O_CLOEXEC));
  b.size_bytes = 64 * 1024;
  auto dev = std::make_shared<VirtioBlock>(std::move(b), [&](uint64_t bytes) {
    asked.push_back(bytes);
    return allow;
  });
  VirtioActivation a;
  a.memory = &mem;
  a.acked_features = kVirtioFVersion1;
  a.queues = {VirtqueueConfig{16, 16, true, kDesc, kAvail, kUsed}};
  dev->activate(a);
  EXPECT_EQ(submit(*dev, kBlkTIn, 0, 1024, true), 0xff) << "served despite the limiter";
  EXPECT_EQ(*mem.read_obj<uint16_t>(kUsed + 2), 0);
  allow = true;
  dev->retry();
  EXPECT_EQ(*mem.read_obj<uint8_t>(kStatus), kBlkSOk);
  EXPECT_EQ(*mem.read_obj<uint16_t>(kUsed + 2), 1);
  EXPECT_EQ(asked, (std::vector<uint64_t>{1024, 1024}));
  EXPECT_EQ(submit(*dev, kBlkTFlush, 0, 0, true), kBlkSOk);
  EXPECT_EQ(asked.back(), 0u);  // an op with no bandwidth
}

TEST(BlockRequest, TooManySegmentsIsRefusedBeforeAnyIo) {
  BlockRequest r;
  r.type = kBlkTIn;
  r.data.assign(kBlkMaxSegments + 1, GuestBuffer{0x1000, 512});
  r.data_len = (kBlkMaxSegments + 1) * 512;
  EXPECT_EQ(check_block_request(r, 1ull << 40, false), kBlkSIoErr);
  r.data.resize(kBlkMaxSegments);
  r.data_len = kBlkMaxSegments * 512;
  EXPECT_EQ(check_block_request(r, 1ull << 40, false), kBlkSOk);
}

}  // namespace
}  // namespace kindling::vmm
