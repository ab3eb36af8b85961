// The userfaultfd handler without a VM: faults from this test's own thread
// are served from a memory file, a removed page comes back as zeros, the hot
// list is copied in without faults, and an unreadable file is reported once
// instead of leaving the faulting thread blocked.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "vmm/memory/uffd_handler.hpp"

namespace kindling::vmm {
namespace {

constexpr uint64_t kPages = 64;
constexpr uint64_t kPage = 4096;

class UffdHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char path[] = "/tmp/kindling-uffd-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    path_ = path;
    std::string data(kPages * kPage, '\0');
    for (uint64_t p = 0; p < kPages; ++p) data[p * kPage + 7] = static_cast<char>(p + 1);
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
    void* m = ::mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(m, MAP_FAILED);
    mem_ = static_cast<uint8_t*>(m);
  }
  void TearDown() override {
    handler_.reset();
    ::munmap(mem_, kPages * kPage);
    ::unlink(path_.c_str());
  }
  bool start(UffdOptions opts) {
    UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    auto h = UffdHandler::start(mem_, kPages * kPage, std::move(fd), std::move(opts), metrics_);
    if (!h) {
      error_ = h.error().message;
      return false;
    }
    handler_ = std::move(*h);
    return true;
  }
  uint8_t byte(uint64_t page) { return *static_cast<volatile uint8_t*>(mem_ + page * kPage + 7); }

  std::string path_, error_;
  uint8_t* mem_ = nullptr;
  VmmMetrics metrics_;
  std::unique_ptr<UffdHandler> handler_;
};

TEST_F(UffdHandlerTest, ServesFaultsFromTheFileAndZeroesRemovedPages) {
  UffdOptions opts;
  opts.record = true;
  if (!start(std::move(opts))) GTEST_SKIP() << "userfaultfd unavailable here: " << error_;
  EXPECT_EQ(byte(5), 6);
  EXPECT_EQ(byte(9), 10);
  EXPECT_EQ(byte(5), 6);  // present now: no second fault
  EXPECT_EQ(metrics_.uffd_faults.load(), 2u);
  EXPECT_EQ(metrics_.uffd_bytes_read.load(), 2 * kPage);
  EXPECT_EQ(handler_->recorded_pages(), (std::vector<uint64_t>{5, 9}));
  // Given back (as a balloon would): the next touch must read zeros, not
  // the snapshot's old contents.
  ASSERT_EQ(::madvise(mem_ + 5 * kPage, kPage, MADV_DONTNEED), 0);
  EXPECT_EQ(byte(5), 0);
  EXPECT_GE(metrics_.uffd_removes.load(), 1u);
}

TEST_F(UffdHandlerTest, HotPagesArriveWithoutFaults) {
  UffdOptions opts;
  opts.prefetch = to_page_runs({1, 2, 3, 40});
  ASSERT_EQ(opts.prefetch.size(), 2u);
  if (!start(std::move(opts))) GTEST_SKIP() << "userfaultfd unavailable here: " << error_;
  ::usleep(20000);
  EXPECT_EQ(metrics_.uffd_prefetched_pages.load(), 0u) << "prefetch before start_prefetch()";
  handler_->start_prefetch();
  for (int i = 0; i < 500 && metrics_.uffd_prefetched_pages.load() < 4; ++i) ::usleep(1000);
  ASSERT_EQ(metrics_.uffd_prefetched_pages.load(), 4u);
  EXPECT_EQ(byte(40), 41);
  EXPECT_EQ(byte(2), 3);
  EXPECT_EQ(metrics_.uffd_faults.load(), 0u);
}

TEST_F(UffdHandlerTest, TruncatedFileIsReportedAndTheFaultDoesNotBlock) {
  std::atomic<int> fatal{0};
  std::string why;
  UffdOptions opts;
  opts.on_fatal = [&](const std::string& w) {
    why = w;
    fatal.fetch_add(1);
  };
  if (!start(std::move(opts))) GTEST_SKIP() << "userfaultfd unavailable here: " << error_;
  ASSERT_EQ(::truncate(path_.c_str(), 8 * kPage), 0);
  EXPECT_EQ(byte(3), 4);   // still in the file
  EXPECT_EQ(byte(30), 0);  // past its end now: zeros, and the VM is told to end
  EXPECT_EQ(byte(31), 0);
  EXPECT_EQ(fatal.load(), 1);
  EXPECT_NE(why.find("truncated"), std::string::npos) << why;
}

// The hot list on disk: runs of consecutive pages, in the order recorded.
class HotPageListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char path[] = "/tmp/kindling-hot-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    path_ = path;
  }
  void TearDown() override { ::unlink(path_.c_str()); }
  void write_text(const std::string& text) {
    int fd = ::open(path_.c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
  }
  std::string refusal(const std::string& text, uint64_t pages = 100) {
    write_text(text);
    auto r = read_hot_pages(path_, pages);
    return r ? "" : r.error().message;
  }
  std::string path_;
};

TEST_F(HotPageListTest, RecordedPagesBecomeRunsInTheirOrderAndReadBack) {
  // Fault order: an ascending stretch, a jump back, single pages.
  std::vector<uint64_t> pages = {10, 11, 12, 13, 2, 3, 50, 7};
  ASSERT_TRUE(write_hot_pages(path_, pages).ok());
  auto runs = read_hot_pages(path_, 64);
  ASSERT_TRUE(runs.ok()) << runs.error().message;
  EXPECT_EQ(*runs, (std::vector<PageRun>{{10, 4}, {2, 2}, {50, 1}, {7, 1}}));
}

TEST_F(HotPageListTest, ALongSequentialListIsAFewBytes) {
  std::vector<uint64_t> pages;
  for (uint64_t p = 1024; p < 262144; ++p) pages.push_back(p);
  ASSERT_TRUE(write_hot_pages(path_, pages).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_LT(st.st_size, 32);
  auto runs = read_hot_pages(path_, 262144);
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(*runs, (std::vector<PageRun>{{1024, 262144 - 1024}}));
}

TEST_F(HotPageListTest, MalformedOrOversizedListsAreRefused) {
  EXPECT_NE(refusal("1-\n").find("malformed"), std::string::npos);
  EXPECT_NE(refusal("5-3\n").find("malformed"), std::string::npos);
  EXPECT_NE(refusal("-3\n").find("malformed"), std::string::npos);
  EXPECT_NE(refusal("1 2\n").find("malformed"), std::string::npos);
  EXPECT_NE(refusal("1\n\n").find("malformed"), std::string::npos);
  EXPECT_NE(refusal("4\n9").find("truncated"), std::string::npos);
  EXPECT_NE(refusal("0-100\n").find("guest memory has 100"), std::string::npos);
  EXPECT_NE(refusal("0-99\n0-99\n").find("more pages"), std::string::npos);
  EXPECT_NE(refusal("99999999999999999999999\n").find("malformed"), std::string::npos);
  EXPECT_EQ(refusal("0-99\n"), "");
  EXPECT_EQ(refusal(""), "");
}

}  // namespace
}  // namespace kindling::vmm
