#include "vmm/devices/serial/uart8250.hpp"

#include <unistd.h>

#include <cerrno>

namespace kindling::vmm {
namespace {

constexpr uint8_t kRegData = 0, kRegIer = 1, kRegIir = 2, kRegLcr = 3, kRegMcr = 4, kRegLsr = 5, kRegMsr = 6, kRegScr = 7;
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kIerRdi = 0x01, kIerThri = 0x02;
constexpr uint8_t kIirNone = 0x01, kIirThri = 0x02, kIirRdi = 0x04, kIirFifoBits = 0xc0;
constexpr uint8_t kLsrDataReady = 0x01, kLsrThrEmpty = 0x20, kLsrIdle = 0x40;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMsrDcd = 0x80, kMsrDsr = 0x20, kMsrCts = 0x10;
constexpr size_t kMaxInput = 64 * 1024;  // host input is bounded, not guest-driven

}  // namespace

Uart8250::Uart8250(int out_fd, std::function<void()> raise_irq, VmmMetrics& metrics)
    : out_fd_(out_fd), raise_irq_(std::move(raise_irq)), metrics_(metrics) {}

void Uart8250::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  // Byte registers; wider accesses read the first register and pad with ones.
  for (auto& b : data) b = 0xff;
  if (!data.empty() && offset < 8) data[0] = read_register(static_cast<uint8_t>(offset));
}

void Uart8250::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  if (!data.empty() && offset < 8) write_register(static_cast<uint8_t>(offset), data[0]);
}

void Uart8250::enqueue_input(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mu_);
  for (uint8_t b : bytes) {
    if (input_.size() >= kMaxInput) break;
    input_.push_back(b);
  }
  update_interrupt();
}

SerialState Uart8250::save_state() {
  std::lock_guard lock(mu_);
  return SerialState{ier_, lcr_, mcr_, scr_, dll_, dlh_, static_cast<uint8_t>(thr_interrupt_pending_ ? 1 : 0)};
}

void Uart8250::restore_state(const SerialState& s) {
  std::lock_guard lock(mu_);
  ier_ = s.ier;
  lcr_ = s.lcr;
  mcr_ = s.mcr;
  scr_ = s.scr;
  dll_ = s.dll;
  dlh_ = s.dlh;
  thr_interrupt_pending_ = s.thr_interrupt_pending != 0;
}

uint8_t Uart8250::read_register(uint8_t reg) {
  switch (reg) {
    case kRegData: {
      if (lcr_ & kLcrDlab) return dll_;
      if (input_.empty()) return 0;
      uint8_t b = input_.front();
      input_.pop_front();
      update_interrupt();
      return b;
    }
    case kRegIer:
      return (lcr_ & kLcrDlab) ? dlh_ : ier_;
    case kRegIir: {
      uint8_t iir = kIirFifoBits;
      if ((ier_ & kIerRdi) && !input_.empty()) {
        iir |= kIirRdi;
      } else if (thr_interrupt_pending_) {
        iir |= kIirThri;
        thr_interrupt_pending_ = false;  // reading IIR acknowledges THRE
      } else {
        iir |= kIirNone;
      }
      return iir;
    }
    case kRegLcr:
      return lcr_;
    case kRegMcr:
      return mcr_;
    case kRegLsr:
      // Output is never backed up from the guest's point of view: the host
      // write is synchronous, so THR is always empty.
      return static_cast<uint8_t>(kLsrThrEmpty | kLsrIdle | (input_.empty() ? 0 : kLsrDataReady));
    case kRegMsr:
      if (mcr_ & kMcrLoop) return static_cast<uint8_t>((mcr_ & 0x0f) << 4);
      return kMsrDcd | kMsrDsr | kMsrCts;
    case kRegScr:
      return scr_;
    default:
      return 0xff;
  }
}

void Uart8250::write_register(uint8_t reg, uint8_t value) {
  switch (reg) {
    case kRegData:
      if (lcr_ & kLcrDlab) {
        dll_ = value;
        return;
      }
      if (mcr_ & kMcrLoop) {
        if (input_.size() < kMaxInput) input_.push_back(value);
      } else {
        metrics_.mark(metrics_.first_serial_byte_us);
        ssize_t n;
        do {
          n = ::write(out_fd_, &value, 1);
        } while (n < 0 && errno == EINTR);
        if (n == 1) {
          metrics_.serial_bytes_out.fetch_add(1, std::memory_order_relaxed);
        } else {
          metrics_.serial_write_errors.fetch_add(1, std::memory_order_relaxed);
        }
      }
      thr_interrupt_pending_ = true;
      update_interrupt();
      return;
    case kRegIer:
      if (lcr_ & kLcrDlab) {
        dlh_ = value;
      } else {
        bool thri_enabled_now = !(ier_ & kIerThri) && (value & kIerThri);
        ier_ = value & 0x0f;
        if (thri_enabled_now) thr_interrupt_pending_ = true;  // THR is empty
        update_interrupt();
      }
      return;
    case kRegLcr:
      lcr_ = value;
      return;
    case kRegMcr:
      mcr_ = value & 0x1f;
      return;
    case kRegScr:
      scr_ = value;
      return;
    default:
      return;  // FCR and read-only registers
  }
}

void Uart8250::update_interrupt() {
  bool rx = (ier_ & kIerRdi) && !input_.empty();
  bool tx = (ier_ & kIerThri) && thr_interrupt_pending_;
  if ((rx || tx) && raise_irq_) raise_irq_();
}

}  // namespace kindling::vmm
