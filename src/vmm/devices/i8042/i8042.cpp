#include "vmm/devices/i8042/i8042.hpp"

namespace kindling::vmm {
namespace {

constexpr uint64_t kData = 0, kCommand = 4;
constexpr uint8_t kStatusOutputFull = 0x01, kStatusSystemFlag = 0x04, kStatusCommandLast = 0x08;
constexpr uint8_t kCmdReadCommandByte = 0x20, kCmdWriteCommandByte = 0x60, kCmdSelfTest = 0xaa,
                  kCmdPulseReset = 0xfe;
constexpr size_t kMaxQueued = 64;

}  // namespace

I8042::I8042(std::function<void()> on_reset, std::function<void()> raise_irq, VmmMetrics& metrics)
    : on_reset_(std::move(on_reset)), raise_irq_(std::move(raise_irq)), metrics_(metrics) {}

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  for (auto& b : data) b = 0xff;
  if (data.empty()) return;
  if (offset == kCommand) {
    data[0] = static_cast<uint8_t>(kStatusSystemFlag | kStatusCommandLast | (output_.empty() ? 0 : kStatusOutputFull));
  } else if (offset == kData) {
    if (output_.empty()) {
      data[0] = 0;
    } else {
      data[0] = output_.front();
      output_.pop_front();
      if (!output_.empty() && raise_irq_) raise_irq_();
    }
  }
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  bool reset = false;
  {
    std::lock_guard lock(mu_);
    uint8_t v = data[0];
    if (offset == kCommand) {
      switch (v) {
        case kCmdPulseReset:
          reset = true;
          break;
        case kCmdReadCommandByte:
          if (output_.size() < kMaxQueued) output_.push_back(command_byte_);
          break;
        case kCmdWriteCommandByte:
          pending_command_ = v;
          break;
        case kCmdSelfTest:
          if (output_.size() < kMaxQueued) output_.push_back(0x55);
          break;
        default:
          break;  // other controller commands are accepted and ignored
      }
    } else if (offset == kData) {
      if (pending_command_ == kCmdWriteCommandByte) command_byte_ = v;
      pending_command_ = 0;
    }
  }
  if (reset) {
    metrics_.i8042_reset_requests.fetch_add(1);
    on_reset_();  // outside the lock: it stops the VM
  }
}

void I8042::send_ctrl_alt_del() {
  {
    std::lock_guard lock(mu_);
    for (uint8_t b : {0x14, 0x11, 0xe0, 0x71}) {  // Ctrl, Alt, Del (extended)
      if (output_.size() < kMaxQueued) output_.push_back(b);
    }
  }
  metrics_.ctrl_alt_del_sent.fetch_add(1);
  if (raise_irq_) raise_irq_();
}

}  // namespace kindling::vmm
