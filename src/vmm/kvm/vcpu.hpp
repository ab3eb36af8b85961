// One vCPU: its KVM fd and shared kvm_run page, and the thread that runs it.
// Pause and stop are requests the thread honours between KVM_RUN calls; a
// real-time signal plus kvm_run.immediate_exit gets it out of KVM_RUN without
// a race (the flag covers a signal that lands just before the ioctl).
#pragma once

#include <linux/kvm.h>
#include <pthread.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "vmm/devices/bus.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/metrics.hpp"

namespace kindling::vmm {

// Why a vCPU asked the VM to end.
enum class GuestStop { kReset, kShutdown, kInternalError, kVmmFault };

struct VcpuContext {
  const DeviceBus* pio = nullptr;
  const DeviceBus* mmio = nullptr;
  VmmMetrics* metrics = nullptr;
  std::function<void(GuestStop, std::string)> on_guest_stop;
  std::function<void()> before_run;  // per-thread setup (seccomp) before the first KVM_RUN
};

class Vcpu {
 public:
  static Result<std::unique_ptr<Vcpu>> create(const Kvm& kvm, const KvmVm& vm, uint32_t index);
  ~Vcpu();

  uint32_t index() const { return index_; }
  int fd() const { return fd_.get(); }

  // `paused`: the thread parks before its first KVM_RUN (a restored VM loaded without resume_vm).
  void start(VcpuContext ctx, bool paused = false);
  // Returns once the thread is parked (or has ended), or false on timeout.
  bool pause(std::chrono::milliseconds timeout);
  void resume();
  // Asks the thread to leave its loop; safe from any thread, this one included.
  void request_stop();
  void stop_and_join();

  // The signal used to kick vCPU threads; installed once per process.
  static void install_kick_signal();

 private:
  Vcpu() = default;
  enum class Want { kRun, kPause, kStop };
  void thread_main();
  void kick();
  bool handle_exit();  // false: this vCPU is done
  void complete_pending_exit();

  uint32_t index_ = 0;
  UniqueFd fd_;
  kvm_run* run_ = nullptr;
  size_t run_size_ = 0;
  VcpuContext ctx_;
  std::thread thread_;
  pthread_t native_ = {};

  std::mutex mu_;
  std::condition_variable cv_;
  Want want_ = Want::kRun;
  bool parked_ = false;
  bool ended_ = false;
};

}  // namespace kindling::vmm
