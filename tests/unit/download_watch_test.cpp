// The download events' watch over a directory the machine writes: finished
// files are reported once, Chromium's temporaries, links and directories
// never, and a machine making files without end gets a capped number.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "control/download_watch.hpp"

namespace kindling::control {
namespace {

namespace fs = std::filesystem;

class DownloadWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kindling-downloads-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    auto watch = DownloadWatch::start(
        io_, UniqueFd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)),
        [this](const std::string& name, std::uint64_t size) { reports_.push_back(name + ":" + std::to_string(size)); },
        [this](int n) { capped_ = n; });
    ASSERT_TRUE(watch) << watch.error().message;
    watch_ = std::move(watch).value();
  }
  void TearDown() override {
    watch_.reset();
    fs::remove_all(root_);
  }
  void write(const std::string& name, const std::string& text) { std::ofstream(root_ + "/" + name) << text; }
  void settle() {
    io_.restart();
    io_.run_for(std::chrono::milliseconds(100));
  }

  boost::asio::io_context io_;
  std::string root_;
  std::unique_ptr<DownloadWatch> watch_;
  std::vector<std::string> reports_;
  int capped_ = 0;
};

TEST_F(DownloadWatchTest, ReportsAFileMovedIntoPlaceOnce) {
  write("report.pdf.crdownload", "12345");
  write(".org.chromium.Chromium.abc", "x");
  fs::rename(root_ + "/report.pdf.crdownload", root_ + "/report.pdf");
  // Chromium may open the finished file again; that is not a second download.
  { std::ofstream(root_ + "/report.pdf", std::ios::app); }
  settle();
  EXPECT_EQ(reports_, std::vector<std::string>{"report.pdf:5"});
}

TEST_F(DownloadWatchTest, TheEmptyFileReservingANameIsNotADownload) {
  write("big.bin", "");  // Chromium's placeholder for the final name
  write("big.bin.crdownload", "0123456789");
  settle();
  EXPECT_TRUE(reports_.empty()) << reports_.front();
  fs::rename(root_ + "/big.bin.crdownload", root_ + "/big.bin");
  write("empty.txt.crdownload", "");
  fs::rename(root_ + "/empty.txt.crdownload", root_ + "/empty.txt");
  settle();
  EXPECT_EQ(reports_, (std::vector<std::string>{"big.bin:10", "empty.txt:0"}));
}

TEST_F(DownloadWatchTest, IgnoresLinksDirectoriesAndVanishedFiles) {
  ASSERT_EQ(::symlink("/etc/passwd", (root_ + "/evil").c_str()), 0);
  fs::create_directory(root_ + "/sub");
  write("gone.txt", "x");
  fs::remove(root_ + "/gone.txt");
  settle();
  EXPECT_TRUE(reports_.empty()) << reports_.front();
}

TEST_F(DownloadWatchTest, MakesNamesPrintable) {
  write("a\tb\x7f", "xy");
  settle();
  EXPECT_EQ(reports_, std::vector<std::string>{"a?b?:2"});
}

TEST_F(DownloadWatchTest, CapsTheNumberOfReports) {
  for (int i = 0; i < DownloadWatch::kMaxReports + 20; ++i) write("f" + std::to_string(i), "x");
  settle();
  EXPECT_EQ(static_cast<int>(reports_.size()), DownloadWatch::kMaxReports);
  EXPECT_EQ(capped_, DownloadWatch::kMaxReports);
}

}  // namespace
}  // namespace kindling::control
