// The device thread: one epoll loop that runs all virtio queue work and
// backend I/O (queue eventfds signalled by KVM ioeventfds or by the MMIO-exit
// fallback, sockets, timers). vCPU threads never do device I/O, so a slow
// disk never stalls a vCPU inside an MMIO exit.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <unordered_map>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kindling::vmm {

class DeviceEventLoop {
 public:
  using Callback = std::function<void(uint32_t events)>;
  static Result<std::unique_ptr<DeviceEventLoop>> create();
  ~DeviceEventLoop();

  // Before start(), or from callbacks on the loop thread.
  Status add(int fd, uint32_t events, Callback cb);
  void remove(int fd);

  void start(std::function<void()> thread_setup);
  void stop();  // idempotent; joins the thread

 private:
  DeviceEventLoop() = default;
  void run();

  UniqueFd epoll_;
  UniqueFd stop_event_;
  std::unordered_map<int, std::shared_ptr<Callback>> callbacks_;
  std::function<void()> thread_setup_;
  std::thread thread_;
};

}  // namespace kindling::vmm
