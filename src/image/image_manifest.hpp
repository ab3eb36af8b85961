// The manifest of a built image: what is in it, what it was built from, and
// the checksums `kindling image check` and `kindling serve` verify. Written
// last by the build: an image directory without a manifest that verifies is
// not an image.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace kindling::image {

struct PackageEntry {
  std::string name;
  std::string version;
  std::uint64_t installed_kib = 0;  // dpkg's Installed-Size
};

struct ImageManifest {
  int format = 1;
  std::string key;  // cache key of the inputs (image_recipe.hpp)
  std::string suite;
  std::string chromium_version;
  std::string image_file;  // relative to the manifest's directory
  std::string filesystem = "squashfs";
  std::string compression;
  std::uint64_t image_bytes = 0;
  std::string image_sha256;
  std::uint64_t rootfs_bytes = 0;  // uncompressed file bytes
  std::string agent_path;          // inside the image
  std::uint64_t agent_bytes = 0;
  std::string agent_sha256;
  std::vector<PackageEntry> packages;
  // microVM boot files (guest_boot.hpp), next to the image file.
  struct Boot {
    std::string kernel_package;
    std::string kernel_version;
    std::string kernel_file, kernel_sha256;
    std::uint64_t kernel_bytes = 0;
    std::string initramfs_file, initramfs_sha256;
    std::uint64_t initramfs_bytes = 0;
    std::vector<std::string> modules;          // in load order
    std::vector<std::string> builtin_modules;  // wanted, built into the kernel
    std::string cmdline;                       // kernel_cmdline.hpp's default for this image
  } boot;
  std::string recipe_sha256;
  std::string candidates;  // "name version" lines the key was computed from
  std::int64_t source_date_epoch = 0;
  std::map<std::string, double> step_seconds;  // how long each build step took (not reproducible)
  std::string built_by;
};

// JSON text with a trailing self-checksum ("manifest_sha256" over the rest),
// so an edited manifest is detected, not only an edited image.
std::string manifest_text(const ImageManifest& manifest);
// Parses and checks the self-checksum and the required fields.
Result<ImageManifest> parse_manifest(const std::string& text);

// Reads <dir>/manifest.json and checks the image file's size and sha256
// against it. Errors say which check failed and what was expected.
Result<ImageManifest> verify_image_dir(const std::string& dir);

// Parses `dpkg-query -W -f '${Package}\t${Version}\t${Installed-Size}\n'`.
std::vector<PackageEntry> parse_package_list(const std::string& dpkg_query_output);

}  // namespace kindling::image
