#include "vmm/devices/bus.hpp"

#include <fmt/format.h>

namespace kindling::vmm {

Status DeviceBus::insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length, std::string name) {
  if (length == 0 || base + length < base) return make_error(fmt::format("device {}: bad range", name));
  for (const auto& e : entries_) {
    if (base < e.base + e.length && e.base < base + length) {
      return make_error(fmt::format("device {} at {:#x} overlaps {}", name, base, e.name));
    }
  }
  entries_.push_back({base, length, std::move(name), std::move(device)});
  return ok_status();
}

const DeviceBus::Entry* DeviceBus::find(uint64_t addr, uint64_t len) const {
  for (const auto& e : entries_) {
    if (addr >= e.base && addr - e.base < e.length && len <= e.length - (addr - e.base)) return &e;
  }
  return nullptr;
}

bool DeviceBus::read(uint64_t addr, std::span<uint8_t> data) const {
  const Entry* e = find(addr, data.size());
  if (!e) return false;
  e->device->read(addr - e->base, data);
  return true;
}

bool DeviceBus::write(uint64_t addr, std::span<const uint8_t> data) const {
  const Entry* e = find(addr, data.size());
  if (!e) return false;
  e->device->write(addr - e->base, data);
  return true;
}

}  // namespace kindling::vmm
