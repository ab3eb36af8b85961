#include "node/sandbox/uid_range_pool.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>

namespace kindling::node {

namespace {
constexpr int kFree = -1;
constexpr int kClaimedWithoutLock = -2;
}  // namespace

UidRangePool::UidRangePool(uid_t base, std::uint32_t slots, std::string lock_dir)
    : base_(base), claims_(slots, kFree), lock_dir_(std::move(lock_dir)) {
  if (!lock_dir_.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(lock_dir_, ec);
  }
}

UidRangePool::~UidRangePool() {
  for (int fd : claims_)
    if (fd >= 0) ::close(fd);
}

std::optional<uid_t> UidRangePool::acquire() {
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < claims_.size(); ++i) {
    if (claims_[i] != kFree) continue;
    if (lock_dir_.empty()) {
      claims_[i] = kClaimedWithoutLock;
    } else {
      std::string path = lock_dir_ + "/" + std::to_string(base_ + i * kIdsPerMachine);
      int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (fd < 0) continue;
      if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {  // another server holds it
        ::close(fd);
        continue;
      }
      claims_[i] = fd;
    }
    return base_ + static_cast<uid_t>(i) * kIdsPerMachine;
  }
  return std::nullopt;
}

void UidRangePool::release(uid_t first) {
  std::lock_guard lock(mutex_);
  if (first < base_) return;
  std::size_t slot = (first - base_) / kIdsPerMachine;
  if (slot >= claims_.size()) return;
  if (claims_[slot] >= 0) ::close(claims_[slot]);
  claims_[slot] = kFree;
}

}  // namespace kindling::node
