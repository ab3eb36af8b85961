// Host uid/gid ranges for machines' user namespaces: one slot of 65536 ids
// per live machine, so no two machines share a host uid — also across
// servers on one host: a slot is claimed host-wide by an flock on
// <lock_dir>/<slot>, which the kernel drops if the server dies.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kindling::node {

inline constexpr uid_t kIdsPerMachine = 65536;

class UidRangePool {
 public:
  // An empty lock_dir claims slots within this process only.
  UidRangePool(uid_t base, std::uint32_t slots, std::string lock_dir = {});
  ~UidRangePool();

  // First host id of a free range, or nothing when all are taken.
  std::optional<uid_t> acquire();
  void release(uid_t first);

 private:
  std::mutex mutex_;
  uid_t base_;
  std::vector<int> claims_;  // per slot: -1 free, else the held lock fd (or 0 without lock_dir)
  std::string lock_dir_;
};

}  // namespace kindling::node
