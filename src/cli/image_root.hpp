// The guest image as the machines' root, for `kindling serve --root image`
// and `kindling image check`: verify, mount once, point the sandbox at it.
#pragma once

#include <memory>
#include <string>

#include "common/result.hpp"
#include "image/image_manifest.hpp"
#include "image/image_mount.hpp"
#include "node/sandbox/sandbox_config.hpp"

namespace kindling::cli {

struct MountedImage {
  std::string dir;  // the image directory (manifest.json, rootfs.squashfs)
  image::ImageManifest manifest;
  std::unique_ptr<image::ImageMount> mount;
};

// Verifies the image in `dir` (a store with `current`, or an image
// directory) and mounts it read-only at `mount_point`.
Result<MountedImage> mount_verified_image(const std::string& dir, const std::string& mount_point);

// Machines run the image's own agent and system directories.
void use_image_root(node::SandboxConfig& config, const std::string& mount_path);

// The agent next to this binary (installed) or in the build tree.
std::string find_agent(const std::string& configured);
// kindling-init (the initramfs's /init), found the same way; env KINDLING_INIT.
std::string find_init();

}  // namespace kindling::cli
