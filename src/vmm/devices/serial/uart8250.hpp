// 8250/16550A UART on COM1: enough of the register set for Linux's 8250
// driver and for polled output from test guests. Output goes to a file
// descriptor (stdout, a file or a FIFO); input is optional and queued by the
// VMM. Interrupts are edge pulses through a callback (an irqfd).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "vmm/devices/bus.hpp"
#include "vmm/metrics.hpp"
#include "vmm/snapshot/snapshot_format.hpp"

namespace kindling::vmm {

class Uart8250 : public BusDevice {
 public:
  // `out_fd` is borrowed and must outlive the device.
  Uart8250(int out_fd, std::function<void()> raise_irq, VmmMetrics& metrics);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Bytes for the guest to read (host-side console input).
  void enqueue_input(std::span<const uint8_t> bytes);

  // Register state for snapshots; queued host input is not guest state and is dropped.
  SerialState save_state();
  void restore_state(const SerialState& s);

 private:
  uint8_t read_register(uint8_t reg);
  void write_register(uint8_t reg, uint8_t value);
  void update_interrupt();  // caller holds mu_
  bool thr_interrupt_pending_ = false;

  std::mutex mu_;
  int out_fd_;
  std::function<void()> raise_irq_;
  VmmMetrics& metrics_;
  uint8_t ier_ = 0, lcr_ = 0x03, mcr_ = 0x08, scr_ = 0, dll_ = 0x0c, dlh_ = 0;
  std::deque<uint8_t> input_;
};

}  // namespace kindling::vmm
