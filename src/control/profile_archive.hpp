// The on-disk format of a browser profile (docs/profiles.md, "Format"): a
// list of directories and files, length-prefixed, compressed with zlib and,
// when the server has a key, sealed with AES-256-GCM. The file is read back
// by the server itself, but a profile's contents came from a machine and the
// file sits on disk where it may be damaged or tampered with, so the reader
// treats it as hostile: every length is checked against the bytes present,
// inflation is bounded by the declared size (itself capped), names are
// validated, and a sealed file is authenticated before anything is parsed.
// No I/O, so it can be fuzzed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace kindling::control {

struct ProfileLimits {
  std::size_t max_entries = 20000;
  std::uint64_t max_total_bytes = 256ull << 20;  // all file data, uncompressed: the size cap
  std::size_t max_path_bytes = 1024;
  std::size_t max_depth = 24;
};

struct ProfileEntry {
  std::string path;  // relative, '/'-separated, no "", ".", ".." components
  bool directory = false;
  std::string data;  // files only
};

// A key for AES-256-GCM (kindling serve --profile-key-file).
using ProfileKey = std::array<std::uint8_t, 32>;

struct ProfileArchive {
  std::uint64_t generation = 0;  // 0 for a new profile, +1 per save
  bool encrypted = false;
  std::vector<ProfileEntry> entries;
  std::uint64_t total_bytes = 0;  // sum of file sizes
};

// A name the archive may hold: relative, '/'-separated components that are
// not empty, ".", or "..", no NUL or control characters, at most
// limits.max_path_bytes and limits.max_depth components.
Status check_profile_path(std::string_view path, const ProfileLimits& limits = {});

// Serializes `archive.entries` (checked as the reader would) with
// `archive.generation`, sealed with `key` when given. Errors: a bad name, or
// more than the limits allow ("payload_too_large", naming the cap).
Result<std::string> write_profile_archive(const ProfileArchive& archive, const std::optional<ProfileKey>& key,
                                          const ProfileLimits& limits = {});

// Reads what write_profile_archive wrote. A sealed file needs the key (a
// wrong key, a changed byte or a cut file are refused); with a key, an
// unsealed file is refused too, so a file swapped on disk cannot bypass the
// seal. Errors have code "invalid" and say what is wrong.
Result<ProfileArchive> read_profile_archive(std::string_view file, const std::optional<ProfileKey>& key,
                                            const ProfileLimits& limits = {});

// Just the header's generation and whether it is sealed (for listings); no
// key needed, nothing authenticated.
Result<ProfileArchive> peek_profile_archive(std::string_view header);
inline constexpr std::size_t kProfileHeaderBytes = 28;

}  // namespace kindling::control
