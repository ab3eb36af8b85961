// The microVM boot files of an image: Debian's cloud kernel, taken from its
// .deb without installing it on the host (apt-get download + dpkg-deb -x),
// and an initramfs with kindling-init, the agent and the modules the guest
// needs (kernel_modules.hpp). Nothing is booted here.
#pragma once

#include <string>
#include <vector>

#include "common/result.hpp"

namespace kindling::image {

inline constexpr const char* kKernelFileName = "vmlinuz";
inline constexpr const char* kInitramfsFileName = "initramfs.cpio";

struct GuestBootInputs {
  std::string kernel_package;  // the metapackage, e.g. linux-image-cloud-amd64
  std::string work_dir;        // scratch (the .deb and its extracted tree go here)
  std::string out_dir;         // vmlinuz and initramfs.cpio are written here
  std::string init_path;       // static kindling-init
  std::string agent_path;      // static kindling-agent
  std::string root_fstype;     // squashfs
  std::int64_t mtime = 0;      // every archive entry's time
  std::string log;             // tool output
};

struct GuestBoot {
  std::string kernel_package;  // the versioned package actually used
  std::string kernel_version;  // 6.1.0-NN-cloud-amd64
  std::vector<std::string> modules;  // in load order, relative paths
  std::vector<std::string> builtin;  // wanted but built in
};

Result<GuestBoot> build_guest_boot(const GuestBootInputs& in);

// "Depends: linux-image-6.1.0-28-cloud-amd64" out of `apt-cache depends`.
Result<std::string> kernel_package_from_depends(const std::string& apt_cache_depends_output);

// The entries an initramfs must hold to boot: init, the agent, the module
// list and each listed module. An error names what is missing.
Status check_initramfs(const std::string& cpio_bytes, const std::vector<std::string>& required_module_names);

}  // namespace kindling::image
