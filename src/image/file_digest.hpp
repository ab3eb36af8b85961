// File checksums and a removal that never leaves its filesystem.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.hpp"

namespace kindling::image {

// Lowercase hex sha256 of a file's bytes.
Result<std::string> sha256_file(const std::string& path);

// Total apparent size of the regular files below `dir` (not following links).
std::uint64_t tree_bytes(const std::string& dir);

// rm -rf that stays on the filesystem of `dir`: a mount left below it by a
// killed tool (a chroot's /proc or /dev) is detached, never recursed into.
Status remove_tree_one_fs(const std::string& dir);

}  // namespace kindling::image
