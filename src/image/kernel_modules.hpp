// Which kernel modules the guest's initramfs carries, and in what order
// its init loads them: the closure of what the guest needs over the
// kernel's modules.dep, dependencies first, minus what is built in.
#pragma once

#include <string>
#include <vector>

#include "common/result.hpp"

namespace kindling::image {

// What a microVM guest needs before its root is mounted: the virtio-mmio
// transport, block (the root image), net, vsock (the agent's channel), the
// root filesystem and overlay (the RAM-backed writable layer).
std::vector<std::string> guest_module_names(const std::string& root_fstype);

struct ModulePlan {
  std::vector<std::string> load_order;  // paths relative to lib/modules/<version>/, dependencies first
  std::vector<std::string> builtin;     // wanted names the kernel has built in (nothing to load)
};

// "virtio-blk.ko.xz" -> "virtio_blk": the kernel's module name of a path.
std::string module_name_of(const std::string& path);

// The `depends=` list from a module's .modinfo ELF section: what modpost
// recorded, and what depmod itself would read. Errors on a non-ELF file.
Result<std::vector<std::string>> modinfo_depends(const std::string& ko_bytes);

// modules.dep text for every .ko below `modules_root` (lib/modules/<ver>),
// from their .modinfo: the .deb ships no modules.dep (depmod writes it at
// install), and the host need not have depmod.
Result<std::string> modules_dep_from_tree(const std::string& modules_root);

// `modules_dep`: the text of modules.dep; `modules_builtin`: of
// modules.builtin. An error names every wanted module that is neither.
Result<ModulePlan> plan_modules(const std::string& modules_dep, const std::string& modules_builtin,
                                const std::vector<std::string>& wanted);

}  // namespace kindling::image
