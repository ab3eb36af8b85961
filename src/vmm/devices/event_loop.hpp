// The device thread: one epoll loop that runs all virtio queue work and
// backend I/O (queue eventfds signalled by KVM ioeventfds or by the MMIO-exit
// fallback, sockets, timers). vCPU threads never do device I/O, so a slow
// disk never stalls a vCPU inside an MMIO exit.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
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
  // Holds the loop still: no callback runs until the lock is released (one
  // running when this is called finishes first). For snapshots: with vCPUs
  // parked, host-side events (a tap frame, a socket, a limiter timer) are
  // all that could still change device state or guest memory.
  std::unique_lock<std::mutex> hold() { return std::unique_lock<std::mutex>(dispatch_mu_); }

 private:
  DeviceEventLoop() = default;
  void run();

  UniqueFd epoll_;
  UniqueFd stop_event_;
  std::unordered_map<int, std::shared_ptr<Callback>> callbacks_;
  std::function<void()> thread_setup_;
  std::thread thread_;
  std::mutex dispatch_mu_;  // held by the loop thread while callbacks run
};

}  // namespace kindling::vmm
