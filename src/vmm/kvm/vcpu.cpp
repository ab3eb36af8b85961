#include "vmm/kvm/vcpu.hpp"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "vmm/logger.hpp"

namespace kindling::vmm {
namespace {

int kick_signal() { return SIGRTMIN; }
void on_kick(int) {}

}  // namespace

void Vcpu::install_kick_signal() {
  struct sigaction sa {};
  sa.sa_handler = on_kick;  // no SA_RESTART: KVM_RUN must return EINTR
  sigemptyset(&sa.sa_mask);
  sigaction(kick_signal(), &sa, nullptr);
}

Result<std::unique_ptr<Vcpu>> Vcpu::create(const Kvm& kvm, const KvmVm& vm, uint32_t index) {
  std::unique_ptr<Vcpu> v(new Vcpu());
  v->index_ = index;
  int fd = ::ioctl(vm.fd(), KVM_CREATE_VCPU, index);
  if (fd < 0) return ioctl_error("KVM_CREATE_VCPU");
  v->fd_.reset(fd);
  v->run_size_ = static_cast<size_t>(kvm.vcpu_mmap_size());
  void* p = ::mmap(nullptr, v->run_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return ioctl_error("mmap of kvm_run");
  v->run_ = static_cast<kvm_run*>(p);
  return v;
}

Vcpu::~Vcpu() {
  stop_and_join();
  if (run_) ::munmap(run_, run_size_);
}

void Vcpu::start(VcpuContext ctx, bool paused) {
  ctx_ = std::move(ctx);
  if (paused) want_ = Want::kPause;
  thread_ = std::thread([this] { thread_main(); });
  native_ = thread_.native_handle();
}

void Vcpu::kick() {
  // Under mu_: the thread cannot have ended and its pthread_t stays valid.
  run_->immediate_exit = 1;
  if (!ended_) pthread_kill(native_, kick_signal());
}

bool Vcpu::pause(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (ended_ || !thread_.joinable()) return true;
  want_ = Want::kPause;
  kick();
  return cv_.wait_for(lock, timeout, [this] { return parked_ || ended_; });
}

void Vcpu::resume() {
  std::lock_guard lock(mu_);
  if (want_ == Want::kPause) want_ = Want::kRun;
  cv_.notify_all();
}

void Vcpu::request_stop() {
  std::lock_guard lock(mu_);
  if (!thread_.joinable()) return;
  want_ = Want::kStop;
  kick();
  cv_.notify_all();
}

void Vcpu::stop_and_join() {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    want_ = Want::kStop;
    kick();
    cv_.notify_all();
  }
  thread_.join();
}

void Vcpu::thread_main() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, kick_signal());
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  pthread_setname_np(pthread_self(), fmt::format("vcpu {}", index_).c_str());
  if (ctx_.before_run) ctx_.before_run();

  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (want_ == Want::kPause) {
        lock.unlock();
        complete_pending_exit();
        lock.lock();
      }
      while (want_ == Want::kPause) {
        parked_ = true;
        cv_.notify_all();
        cv_.wait(lock);
      }
      parked_ = false;
      if (want_ == Want::kStop) break;
      run_->immediate_exit = 0;
    }
    int r = ::ioctl(fd_.get(), KVM_RUN, 0);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        ctx_.metrics->exits_intr.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      ctx_.on_guest_stop(GuestStop::kInternalError, fmt::format("vCPU {}: KVM_RUN failed: {}", index_, std::strerror(errno)));
      break;
    }
    if (!handle_exit()) break;
  }
  std::lock_guard lock(mu_);
  ended_ = true;
  cv_.notify_all();
}

// KVM finishes an I/O or MMIO read (writes the value into the guest's
// register) only on the next KVM_RUN. A parked vCPU must not leave one half
// done, or a snapshot taken now would lose it: KVM's documented way is one
// KVM_RUN with immediate_exit set, which completes it and returns EINTR.
void Vcpu::complete_pending_exit() {
  run_->immediate_exit = 1;
  [[maybe_unused]] int r = ::ioctl(fd_.get(), KVM_RUN, 0);
}

bool Vcpu::handle_exit() {
  VmmMetrics& m = *ctx_.metrics;
  switch (run_->exit_reason) {
    case KVM_EXIT_IO: {
      const auto& io = run_->io;
      uint64_t len = uint64_t{io.size} * io.count;
      // The data lives in the kvm_run mapping; KVM sets these, but a bad value
      // must not make us read or write past the mapping.
      if (io.size == 0 || io.size > 4 || io.data_offset > run_size_ || len > run_size_ - io.data_offset) {
        ctx_.on_guest_stop(GuestStop::kInternalError, "KVM_EXIT_IO with out-of-range data");
        return false;
      }
      auto* data = reinterpret_cast<uint8_t*>(run_) + io.data_offset;
      for (uint32_t i = 0; i < io.count; ++i) {
        std::span<uint8_t> one(data + i * io.size, io.size);
        if (io.direction == KVM_EXIT_IO_OUT) {
          m.exits_io_out.fetch_add(1, std::memory_order_relaxed);
          if (!ctx_.pio->write(io.port, one)) m.pio_unhandled.fetch_add(1, std::memory_order_relaxed);
        } else {
          m.exits_io_in.fetch_add(1, std::memory_order_relaxed);
          if (!ctx_.pio->read(io.port, one)) {
            std::memset(one.data(), 0xff, one.size());
            m.pio_unhandled.fetch_add(1, std::memory_order_relaxed);
          }
        }
      }
      return true;
    }
    case KVM_EXIT_MMIO: {
      auto& mm = run_->mmio;
      uint32_t len = std::min<uint32_t>(mm.len, sizeof(mm.data));
      std::span<uint8_t> data(mm.data, len);
      if (mm.is_write) {
        m.exits_mmio_write.fetch_add(1, std::memory_order_relaxed);
        if (!ctx_.mmio->write(mm.phys_addr, data)) {
          m.mmio_unhandled.fetch_add(1, std::memory_order_relaxed);
          log_debug("vcpu {}: write to unbacked guest address {:#x} ignored", index_, mm.phys_addr);
        }
      } else {
        m.exits_mmio_read.fetch_add(1, std::memory_order_relaxed);
        if (!ctx_.mmio->read(mm.phys_addr, data)) {
          std::memset(data.data(), 0xff, data.size());
          m.mmio_unhandled.fetch_add(1, std::memory_order_relaxed);
          log_debug("vcpu {}: read from unbacked guest address {:#x}", index_, mm.phys_addr);
        }
      }
      return true;
    }
    case KVM_EXIT_HLT:
      m.exits_hlt.fetch_add(1, std::memory_order_relaxed);
      return true;
    case KVM_EXIT_INTR:
      m.exits_intr.fetch_add(1, std::memory_order_relaxed);
      return true;
    case KVM_EXIT_SHUTDOWN:
      m.exits_shutdown.fetch_add(1, std::memory_order_relaxed);
      ctx_.on_guest_stop(GuestStop::kShutdown, fmt::format("vCPU {}: guest shut down (triple fault)", index_));
      return false;
    case KVM_EXIT_SYSTEM_EVENT:
      m.exits_system_event.fetch_add(1, std::memory_order_relaxed);
      ctx_.on_guest_stop(run_->system_event.type == KVM_SYSTEM_EVENT_RESET ? GuestStop::kReset : GuestStop::kShutdown,
                         fmt::format("vCPU {}: system event {}", index_, run_->system_event.type));
      return false;
    case KVM_EXIT_FAIL_ENTRY:
      m.exits_fail_entry.fetch_add(1, std::memory_order_relaxed);
      ctx_.on_guest_stop(GuestStop::kInternalError,
                         fmt::format("vCPU {}: VM entry failed, reason {:#x}", index_,
                                     static_cast<uint64_t>(run_->fail_entry.hardware_entry_failure_reason)));
      return false;
    case KVM_EXIT_INTERNAL_ERROR:
      m.exits_internal_error.fetch_add(1, std::memory_order_relaxed);
      ctx_.on_guest_stop(GuestStop::kInternalError,
                         fmt::format("vCPU {}: KVM internal error, suberror {} (on nested hypervisors: an "
                                     "instruction the emulator does not handle)",
                                     index_, run_->internal.suberror));
      return false;
    default:
      m.exits_other.fetch_add(1, std::memory_order_relaxed);
      ctx_.on_guest_stop(GuestStop::kInternalError, fmt::format("vCPU {}: unexpected exit reason {}", index_, run_->exit_reason));
      return false;
  }
}

}  // namespace kindling::vmm
