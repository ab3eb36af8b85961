// The boundary for uploaded Chrome extensions: a zip archive from an API
// client, read into a validated list of files and a parsed manifest. The
// archive is untrusted: every offset, size and name is checked against the
// bytes actually present, output is bounded before it is inflated, and
// anything this reader does not need (encryption, zip64, links, several
// disks) is refused rather than half-supported. No I/O, so it can be fuzzed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace kindling::control {

struct ExtensionArchiveLimits {
  std::size_t max_entries = 4096;
  std::uint64_t max_total_bytes = 128ull << 20;  // all files, uncompressed
  std::uint64_t max_file_bytes = 64ull << 20;    // one file, uncompressed
  // A file larger than ratio_floor_bytes may inflate at most max_ratio times
  // its compressed size: source and images do not compress 200:1, bombs do.
  std::uint64_t max_ratio = 200;
  std::uint64_t ratio_floor_bytes = 1ull << 20;
  std::size_t max_path_bytes = 512;
  std::size_t max_depth = 32;
};

struct ArchiveFile {
  std::string path;  // relative, '/'-separated, no "", ".", ".." components
  std::string data;
};

// What the archive's manifest.json says about the extension.
struct ExtensionManifest {
  std::string name;
  std::string version;
  int manifest_version = 0;
  std::string description;  // may be empty
};

struct ExtensionArchive {
  // Directories are implied by file paths (explicit directory entries only
  // add empty ones, listed here).
  std::vector<ArchiveFile> files;
  std::vector<std::string> empty_dirs;
  ExtensionManifest manifest;
  std::uint64_t total_bytes = 0;
};

// Reads a zip (stored or deflated entries) whose manifest.json sits at the
// root or inside one top-level folder (then stripped). Errors have code
// "bad_request" and say what is wrong ("zip entry '../x' leaves the
// extension's folder").
Result<ExtensionArchive> read_extension_archive(std::string_view zip, const ExtensionArchiveLimits& limits = {});

// manifest.json's text: a JSON object with manifest_version 3 (2 is refused
// with its own message: Chromium 156 no longer loads it), a
// non-empty name and a Chrome version string ("1", "1.2.3.4", each part
// 0..65535).
Result<ExtensionManifest> parse_extension_manifest(std::string_view text);

}  // namespace kindling::control
