// The userfaultfd handler without a VM: faults from this test's own thread
// are served from a memory file, a removed page comes back as zeros, the hot
// list is copied in without faults, and an unreadable file is reported once
// instead of leaving the faulting thread blocked.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <string>

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
  opts.prefetch_pages = {1, 2, 3, 40};
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

}  // namespace
}  // namespace kindling::vmm
