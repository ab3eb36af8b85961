#include "node/sandbox/uid_range_pool.hpp"

namespace kindling::node {

std::optional<uid_t> UidRangePool::acquire() {
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < used_.size(); ++i) {
    if (!used_[i]) {
      used_[i] = true;
      return base_ + static_cast<uid_t>(i) * kIdsPerMachine;
    }
  }
  return std::nullopt;
}

void UidRangePool::release(uid_t first) {
  std::lock_guard lock(mutex_);
  if (first < base_) return;
  std::size_t slot = (first - base_) / kIdsPerMachine;
  if (slot < used_.size()) used_[slot] = false;
}

}  // namespace kindling::node
