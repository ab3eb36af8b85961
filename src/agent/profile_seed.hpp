// A saved browser profile handed to the machine: the host binds its files
// read-only at the folder given by --profile-seed, and the agent copies them
// into the fresh user-data-dir before Chromium starts (owned by the browser
// user, so Chromium can update them). Only folders and regular files are
// copied, without following links, within fixed bounds: the seed came from
// the host, but it is a copy of what an earlier session's pages wrote.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.hpp"

namespace kindling::agent {

inline constexpr std::size_t kMaxSeedEntries = 20000;
inline constexpr std::size_t kMaxSeedDepth = 24;
inline constexpr unsigned long long kMaxSeedBytes = 1ull << 30;

// Copies the tree at `seed` into `user_data_dir` (which must exist, empty).
Status copy_profile_seed(const std::string& seed, const std::string& user_data_dir, uid_t uid, gid_t gid);

}  // namespace kindling::agent
