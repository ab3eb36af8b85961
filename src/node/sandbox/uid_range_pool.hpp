// Host uid/gid ranges for machines' user namespaces: one slot of 65536 ids
// per live machine, so no two machines share a host uid.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

namespace kindling::node {

inline constexpr uid_t kIdsPerMachine = 65536;

class UidRangePool {
 public:
  UidRangePool(uid_t base, std::uint32_t slots) : base_(base), used_(slots, false) {}

  // First host id of a free range, or nothing when all are taken.
  std::optional<uid_t> acquire();
  void release(uid_t first);

 private:
  std::mutex mutex_;
  uid_t base_;
  std::vector<bool> used_;
};

}  // namespace kindling::node
