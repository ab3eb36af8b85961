// What goes into the guest image and how it is built: the one place that
// names the Debian suite, packages, path filters and compression. Changing
// anything here changes the cache key (recipe_text() is hashed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace kindling::image {

// Path of the agent inside the image: the sandbox execs it as PID 1.
inline constexpr const char* kAgentPathInImage = "/kindling/agent";
inline constexpr const char* kImageFileName = "rootfs.squashfs";
inline constexpr const char* kManifestFileName = "manifest.json";

struct ImageRecipe {
  int format = 1;  // bump when the build steps change meaning
  std::string suite = "bookworm";
  std::string variant = "minbase";
  std::vector<std::string> sources;        // sources.list lines for mmdebstrap
  std::vector<std::string> packages;       // --include
  std::string kernel_package;              // microVM kernel, extracted, never installed (guest_boot.hpp)
  std::vector<std::string> dpkg_options;   // path-exclude / path-include, in order
  std::int64_t source_date_epoch = 0;      // every mtime in the image
  int zstd_level = 0;
  std::string block_size;                  // mksquashfs -b
};

ImageRecipe default_recipe();

// Canonical text of the recipe, one line per setting: hashed into the key.
std::string recipe_text(const ImageRecipe& recipe);

std::vector<std::string> mmdebstrap_argv(const ImageRecipe& recipe, const std::string& target_dir);
std::vector<std::string> mksquashfs_argv(const ImageRecipe& recipe, const std::string& source_dir,
                                         const std::string& image_file);

// "name candidate-version" lines for the recipe's packages, from the host's
// apt-cache: a new Debian upload of any of them changes the key. Packages the
// host's lists do not know make it an error (run apt-get update).
Result<std::string> candidate_versions(const ImageRecipe& recipe);
// Parses `apt-cache policy` output into "name version" lines (sorted).
Result<std::string> parse_apt_policy(const std::string& policy_output, const std::vector<std::string>& packages);

// sha256 over recipe text, candidate versions and the agent's and init's sha256.
std::string cache_key(const std::string& recipe_text, const std::string& candidates, const std::string& agent_sha256,
                      const std::string& init_sha256);

}  // namespace kindling::image
