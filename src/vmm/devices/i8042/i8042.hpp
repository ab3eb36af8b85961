// The i8042 keyboard controller, reduced to what a microVM needs: the guest's
// "pulse reset line" command (0xFE on port 0x64) ends the VM cleanly, and the
// host can inject Ctrl+Alt+Del so a guest that handles it shuts down.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "vmm/devices/bus.hpp"
#include "vmm/metrics.hpp"

namespace kindling::vmm {

class I8042 : public BusDevice {
 public:
  // Ports 0x60..0x64 map to offsets 0..4.
  I8042(std::function<void()> on_reset, std::function<void()> raise_irq, VmmMetrics& metrics);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Queues the set-2 scancodes of Ctrl+Alt+Del, as Firecracker does.
  void send_ctrl_alt_del();

 private:
  std::mutex mu_;
  std::function<void()> on_reset_;
  std::function<void()> raise_irq_;
  VmmMetrics& metrics_;
  std::deque<uint8_t> output_;
  uint8_t command_byte_ = 0;
  uint8_t pending_command_ = 0;  // a command awaiting its data byte
};

}  // namespace kindling::vmm
