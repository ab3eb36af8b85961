// The host side of a session's files: names, and what a hostile machine can
// leave in its downloads area (links, FIFOs, directories, partial files).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "control/session_files.hpp"

namespace kindling::control {
namespace {

namespace fs = std::filesystem;

class SessionFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kindling-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = UniqueFd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(dir_.valid());
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(root_ + "/" + name) << text; }

  std::string root_;
  UniqueFd dir_;
};

TEST(SessionFileName, OneComponentWithoutControlCharacters) {
  for (const char* ok : {"a.txt", "report (1).pdf", "ünïcødé.bin", ".hidden"}) EXPECT_TRUE(check_file_name(ok).ok()) << ok;
  for (const char* bad : {"", ".", "..", "a/b", "/etc/passwd", "a\nb", "a\x7f"})
    EXPECT_FALSE(check_file_name(bad).ok()) << bad;
  EXPECT_FALSE(check_file_name(std::string(256, 'a')).ok());
  EXPECT_TRUE(check_file_name(std::string(255, 'a')).ok());
}

TEST_F(SessionFilesTest, ListsPlainFilesWithDigestsAndPartialOnesWithout) {
  write("hello.txt", "hello");
  write("big.bin.crdownload", "partial");
  ASSERT_EQ(::symlink("/etc/passwd", (root_ + "/link").c_str()), 0);
  ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0644), 0);
  ASSERT_EQ(::mkdir((root_ + "/sub").c_str(), 0755), 0);
  auto files = list_session_files(dir_.get());
  ASSERT_TRUE(files.ok()) << files.error().message;
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].name, "big.bin");
  EXPECT_FALSE((*files)[0].complete);
  EXPECT_EQ((*files)[0].sha256, "");
  EXPECT_EQ((*files)[1].name, "hello.txt");
  EXPECT_TRUE((*files)[1].complete);
  EXPECT_EQ((*files)[1].size, 5u);
  EXPECT_EQ((*files)[1].sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
}

TEST_F(SessionFilesTest, ACacheHashesOnlyWhatChangedEvenWithTheMtimeSetBack) {
  write("a.txt", "hello");
  write("b.txt", "other");
  DigestCache cache;
  auto first = list_session_files(dir_.get(), 1000, &cache);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(cache.size(), 2u);
  // Rewrite a.txt with the same size and put its mtime back: ctime still moves.
  struct stat before{};
  ASSERT_EQ(::stat((root_ + "/a.txt").c_str(), &before), 0);
  ::usleep(20000);
  write("a.txt", "HELLO");
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (root_ + "/a.txt").c_str(), times, 0), 0);
  fs::remove(root_ + "/b.txt");
  auto second = list_session_files(dir_.get(), 1000, &cache);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].sha256, "3733cd977ff8eb18b987357e22ced99f46097f31ecb239e878ae63760e83e4d5");  // sha256("HELLO")
  EXPECT_EQ(cache.size(), 1u) << "the removed file is forgotten";
}

TEST_F(SessionFilesTest, OpensOnlyPlainFilesByName) {
  write("hello.txt", "hello");
  ASSERT_EQ(::symlink("/etc/passwd", (root_ + "/link").c_str()), 0);
  ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0644), 0);
  std::uint64_t size = 0;
  auto fd = open_session_file(dir_.get(), "hello.txt", size);
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(size, 5u);
  for (const char* refused : {"link", "fifo", "missing", "../etc/passwd", ".."}) {
    auto r = open_session_file(dir_.get(), refused, size);
    EXPECT_FALSE(r.ok()) << refused;
  }
}

TEST_F(SessionFilesTest, WritesThroughAnOpenFileAndDigestsIt) {
  UniqueFd fd(::openat(dir_.get(), "up.bin", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid());
  auto f = write_session_file(fd.get(), "up.bin", "hello");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->size, 5u);
  EXPECT_EQ(f->sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_EQ(fs::file_size(root_ + "/up.bin"), 5u);
}

}  // namespace
}  // namespace kindling::control
