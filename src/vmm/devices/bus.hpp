// Port-I/O and MMIO dispatch: a fixed table of address ranges to devices,
// built before the vCPUs start and never changed while they run, so lookups
// take no lock. A device serialises its own state.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace kindling::vmm {

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  // `offset` is relative to the device's base; `data` is 1 to 8 bytes.
  virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class DeviceBus {
 public:
  Status insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length, std::string name);
  // False when nothing is mapped at `addr` (the caller counts and ignores it).
  bool read(uint64_t addr, std::span<uint8_t> data) const;
  bool write(uint64_t addr, std::span<const uint8_t> data) const;

 private:
  struct Entry {
    uint64_t base;
    uint64_t length;
    std::string name;
    std::shared_ptr<BusDevice> device;
  };
  const Entry* find(uint64_t addr, uint64_t len) const;
  std::vector<Entry> entries_;
};

}  // namespace kindling::vmm
