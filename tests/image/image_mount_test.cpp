// The loop mount of an image: read-only, and no mount or loop device left
// behind by an unmount, nor by a server that died with its mount in place.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "image/image_mount.hpp"
#include "image/tool_run.hpp"

namespace kindling::image {
namespace {

namespace fs = std::filesystem;

// The kernel frees an autoclear loop device when its last user goes, which
// may lag the unmount by a moment.
std::string backing_after_settling(const std::string& device) {
  for (int i = 0; i < 100 && !loop_backing_file(device).empty(); ++i) ::usleep(20000);
  return loop_backing_file(device);
}

// Loop devices backed by `file`, once the kernel has freed what it will.
int loops_backed_by(const std::string& file, int expected) {
  int n = 0;
  for (int i = 0; i < 100; ++i) {
    n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/sys/block", ec))
      if (e.path().filename().string().rfind("loop", 0) == 0 && loop_backing_file("/dev/" + e.path().filename().string()) == file)
        ++n;
    if (n == expected) break;
    ::usleep(20000);
  }
  return n;
}

class ImageMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (loop devices, mount)";
    if (::access("/dev/loop-control", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/loop-control";
    if (find_tool("mksquashfs").empty()) GTEST_SKIP() << "mksquashfs not installed (squashfs-tools)";
    char tmpl[] = "/tmp/kindling-mount-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/src/usr/bin");
    std::ofstream(dir_ + "/src/usr/bin/hello") << "hello from the image\n";
    auto made = run_tool({{"mksquashfs", dir_ + "/src", dir_ + "/image.sqfs", "-noappend", "-quiet", "-no-progress",
                           "-comp", "zstd"},
                          {}, dir_ + "/mksquashfs.log"});
    ASSERT_TRUE(made) << made.error().message;
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string dir_;
};

TEST_F(ImageMountTest, MountsReadOnlyAndLeavesNothingBehind) {
  std::string point = dir_ + "/mnt";
  std::string device;
  {
    auto m = ImageMount::mount(dir_ + "/image.sqfs", point);
    ASSERT_TRUE(m) << m.error().message;
    device = (*m)->loop_device();
    EXPECT_TRUE(is_mount_point(point));
    EXPECT_EQ(loop_backing_file(device), dir_ + "/image.sqfs");
    std::ifstream in(point + "/usr/bin/hello");
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "hello from the image");
    int fd = ::open((point + "/usr/bin/new").c_str(), O_WRONLY | O_CREAT, 0644);
    EXPECT_LT(fd, 0);
    EXPECT_EQ(errno, EROFS);
  }
  EXPECT_FALSE(is_mount_point(point));
  EXPECT_EQ(backing_after_settling(device), "") << device << " still attached after unmount";
}

TEST_F(ImageMountTest, StaleMountOfAKilledServerIsReplaced) {
  std::string point = dir_ + "/mnt";
  auto first = ImageMount::mount(dir_ + "/image.sqfs", point);
  ASSERT_TRUE(first) << first.error().message;
  std::string stale_device = (*first)->loop_device();
  // A new server finds the old mount still there (its owner died).
  auto second = ImageMount::mount(dir_ + "/image.sqfs", point);
  ASSERT_TRUE(second) << second.error().message;
  // The kernel may hand the freed device out again: what counts is that only
  // one loop device is left on the image.
  EXPECT_EQ(loops_backed_by(dir_ + "/image.sqfs", 1), 1) << "the stale loop device was not freed";
  ASSERT_TRUE((*second)->unmount());
  EXPECT_FALSE(is_mount_point(point));
  EXPECT_EQ(backing_after_settling((*second)->loop_device()), "");
  (void)(*first)->unmount();  // already detached: must not touch anything else
  EXPECT_FALSE(is_mount_point(point));
}

TEST_F(ImageMountTest, MissingImageIsAClearError) {
  auto m = ImageMount::mount(dir_ + "/nope.sqfs", dir_ + "/mnt");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("cannot open image"), std::string::npos) << m.error().message;
}

}  // namespace
}  // namespace kindling::image
