// What the on-disk stores under the data dir (extensions/, profiles/) share:
// one folder per entry named by a random id, made under a temporary name and
// renamed into place, and deleted by renaming it aside first, so a crash
// leaves either a whole entry or a leftover that the next start clears.
#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"

namespace kindling::control {

inline constexpr std::string_view kStoreTempPrefix = ".tmp-";     // being made
inline constexpr std::string_view kStoreDeletedPrefix = ".del-";  // being deleted

// An entry id as random_hex makes them: 24 lowercase hex digits.
bool is_store_id(std::string_view id);

// A folder an interrupted add or delete left behind.
inline bool is_store_leftover(std::string_view name) {
  return name.starts_with(kStoreTempPrefix) || name.starts_with(kStoreDeletedPrefix);
}

// Removes `dir`/`id`: out of sight first (one rename), then its files.
// `what` names the entry in the error ("extension", "profile").
Status remove_store_entry(const std::string& dir, const std::string& id, std::string_view what);

}  // namespace kindling::control
