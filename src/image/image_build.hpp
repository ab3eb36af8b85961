// `kindling image build`: the guest root filesystem from Debian packages
// (mmdebstrap), the static agent added, compressed into a squashfs image
// with its manifest. Cached by the hash of its inputs; an interrupted build
// leaves only a .build-* directory that is never taken for an image and is
// removed by the next build. docs/image.md describes the layout.
#pragma once

#include <ostream>
#include <string>

#include "common/result.hpp"
#include "image/image_manifest.hpp"

namespace kindling::image {

struct BuildOptions {
  std::string store_dir;   // images live in <store>/<key16>/, <store>/current links the newest
  std::string agent_path;  // a statically linked kindling-agent
  std::string init_path;   // a statically linked kindling-init (the initramfs's /init)
  std::string built_by;    // "kindling 0.1.0"
  bool force = false;      // rebuild even when the key is cached
};

struct BuildOutcome {
  std::string image_dir;
  ImageManifest manifest;
  bool cache_hit = false;
  double seconds = 0;
};

// Progress lines ("[3/8] mmdebstrap ... 61.2 s") go to `progress`.
Result<BuildOutcome> build_image(const BuildOptions& options, std::ostream& progress);

// <store>/current, or `dir` itself if it holds a manifest: the image a
// command was pointed at.
std::string resolve_image_dir(const std::string& dir);

// Default store: $KINDLING_IMAGE_DIR, else /var/lib/kindling/images.
std::string default_store_dir();

// The whole budget for a compressed image (issue 5).
inline constexpr std::uint64_t kMaxImageBytes = 350ull * 1000 * 1000;

}  // namespace kindling::image
