// The device thread's loop held still for a snapshot: no callback runs while
// the hold lasts, and what arrived meanwhile is served once it ends.
#include "vmm/devices/event_loop.hpp"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace kindling::vmm {
namespace {

using namespace std::chrono_literals;

TEST(DeviceEventLoop, HoldKeepsCallbacksFromRunningUntilReleased) {
  auto loop = DeviceEventLoop::create().value();
  UniqueFd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  ASSERT_TRUE(efd.valid());
  std::atomic<int> served{0};
  const int fd = efd.get();
  ASSERT_TRUE(loop->add(fd, EPOLLIN, [&served, fd](uint32_t) {
    uint64_t n;
    [[maybe_unused]] ssize_t r = ::read(fd, &n, sizeof(n));
    ++served;
  }));
  loop->start({});
  uint64_t one = 1;
  ASSERT_EQ(::write(fd, &one, sizeof(one)), 8);
  for (int i = 0; i < 200 && served == 0; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(served.load(), 1);
  {
    auto held = loop->hold();
    ASSERT_EQ(::write(fd, &one, sizeof(one)), 8);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(served.load(), 1) << "a callback ran while the loop was held";
  }
  for (int i = 0; i < 200 && served == 1; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(served.load(), 2);
  loop->stop();
}

}  // namespace
}  // namespace kindling::vmm
