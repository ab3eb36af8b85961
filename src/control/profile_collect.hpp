// Reads a finished browser's user-data-dir (inside a machine, so written by
// the guest: hostile) into the entries a profile keeps. Only an allowlist is
// kept (cookies, preferences, Local/Session Storage, IndexedDB, service
// workers without their caches, ...; docs/profiles.md, "What is kept"), only
// regular files and folders, opened relative to their folder without
// following links, and the walk is bounded in depth, entries and bytes.
#pragma once

#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "control/profile_archive.hpp"

namespace kindling::control {

// Whether a path below the user-data-dir is kept (`directory`: it is a
// folder, so the walk may descend into it).
bool keep_profile_path(std::string_view path, bool directory);

// Walks the user-data-dir open at `dir`. More than limits allow is an error
// with code "payload_too_large" that names the cap.
Result<std::vector<ProfileEntry>> collect_profile(int dir, const ProfileLimits& limits);

}  // namespace kindling::control
