#include "cli/image_commands.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/image_browser_check.hpp"
#include "cli/image_root.hpp"
#include "common/log.hpp"
#include "image/agent_binary.hpp"
#include "image/file_digest.hpp"
#include "image/guest_boot.hpp"
#include "image/kernel_modules.hpp"
#include "image/image_build.hpp"
#include "image/tool_run.hpp"

namespace kindling::cli {
namespace {

namespace fs = std::filesystem;

struct ImageOptions {
  std::string dir;
  std::string agent_path;
  bool force = false;
  bool skip_browser = false;
  bool boot = false;
};

// Fast KVM: /dev/kvm on a host that is not itself a guest. Under nested
// virtualization a Linux boot takes minutes (docs/vmm-nested-kvm.md), so
// it is not attempted.
std::string why_no_fast_kvm() {
  if (::access("/dev/kvm", R_OK | W_OK) != 0) return "no usable /dev/kvm";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);)
    if (line.rfind("flags", 0) == 0 && line.find(" hypervisor") != std::string::npos)
      return "this host is itself a virtual machine (nested KVM, far too slow to boot Linux)";
  return {};
}

std::string mb(std::uint64_t bytes) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / 1e6 << " MB";
  return s.str();
}

int run_build(const ImageOptions& o) {
  if (::geteuid() != 0) {
    std::cerr << "error: kindling image build must run as root (mmdebstrap --mode=root)\n";
    return 2;
  }
  image::BuildOptions options;
  options.store_dir = o.dir.empty() ? image::default_store_dir() : o.dir;
  options.agent_path = find_agent(o.agent_path);
  options.init_path = find_init();
  options.built_by = "kindling 0.1.0";
  options.force = o.force;
  if (options.agent_path.empty()) {
    std::cerr << "error: kindling-agent not found next to this binary; pass --agent PATH or set KINDLING_AGENT\n";
    return 2;
  }
  if (options.init_path.empty()) {
    std::cerr << "error: kindling-init not found next to this binary or in the build tree; set KINDLING_INIT\n";
    return 2;
  }
  std::cout << "kindling image build: " << options.store_dir << " (agent " << options.agent_path << ")\n";
  auto built = image::build_image(options, std::cout);
  if (!built) {
    std::cerr << "error: " << built.error().message << "\n";
    return 1;
  }
  const auto& m = built->manifest;
  std::cout << (built->cache_hit ? "image unchanged (cache hit)" : "image built") << " in " << std::fixed
            << std::setprecision(1) << built->seconds << " s: " << built->image_dir << "\n"
            << "  Chromium " << m.chromium_version << ", " << m.packages.size() << " packages\n"
            << "  root " << mb(m.rootfs_bytes) << ", image " << mb(m.image_bytes) << " (" << m.filesystem << " "
            << m.compression << ")\n"
            << "  sha256 " << m.image_sha256 << "\n";
  return 0;
}

int run_check(const ImageOptions& o) {
  init_logging("kindling", "warn");
  std::string dir = o.dir.empty() ? image::default_store_dir() : o.dir;
  std::string image_dir = image::resolve_image_dir(dir);
  std::cout << "kindling image check: " << image_dir << "\n";
  auto manifest = image::verify_image_dir(image_dir);
  if (!manifest) {
    std::cerr << "FAIL manifest and checksums: " << manifest.error().message << "\n";
    return 1;
  }
  std::cout << "ok   manifest and checksums: " << manifest->image_file << " " << mb(manifest->image_bytes)
            << ", sha256 " << manifest->image_sha256.substr(0, 16) << "..., Chromium " << manifest->chromium_version
            << "\n";
  if (manifest->image_bytes > image::kMaxImageBytes)
    std::cout << "warn image is over the " << mb(image::kMaxImageBytes) << " budget\n";
  {
    std::ifstream in(image_dir + "/" + manifest->boot.initramfs_file, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    // Every module the guest needs is either built in or in the archive.
    std::vector<std::string> required;
    for (const auto& name : image::guest_module_names("squashfs"))
      if (std::find(manifest->boot.builtin_modules.begin(), manifest->boot.builtin_modules.end(), name) ==
          manifest->boot.builtin_modules.end())
        required.push_back(name);
    if (auto st = image::check_initramfs(bytes.str(), required); !st) {
      std::cerr << "FAIL initramfs: " << st.error().message << "\n";
      return 1;
    }
    std::cout << "ok   initramfs: init, agent and " << manifest->boot.modules.size() << " modules (kernel "
              << manifest->boot.kernel_version << ")\n";
  }
  if (o.boot) {
    std::string why = why_no_fast_kvm();
    if (why.empty()) why = "booting the guest with kindling-vmm is not implemented yet";
    std::cout << "skip --boot: not booted: " << why << "\n";
  }
  if (::geteuid() != 0) {
    std::cerr << "FAIL the remaining checks mount the image and start a sandbox: run as root\n";
    return 1;
  }

  std::string scratch = (fs::temp_directory_path() / ("kindling-image-check-" + std::to_string(::getpid()))).string();
  auto mounted = mount_verified_image(image_dir, scratch + "/root");
  if (!mounted) {
    std::cerr << "FAIL mount: " << mounted.error().message << "\n";
    return 1;
  }
  int rc = 0;
  do {
    std::cout << "ok   mounted read-only at " << mounted->mount->path() << " (" << mounted->mount->loop_device() << ")\n";
    const std::string agent = mounted->mount->path() + manifest->agent_path;
    auto sha = image::sha256_file(agent);
    if (!sha || *sha != manifest->agent_sha256) {
      std::cerr << "FAIL agent: " << (sha ? agent + " has sha256 " + *sha + ", the manifest says " + manifest->agent_sha256
                                         : sha.error().message) << "\n";
      rc = 1;
      break;
    }
    if (auto st = image::check_static_elf(agent); !st) {
      std::cerr << "FAIL agent: " << st.error().message << "\n";
      rc = 1;
      break;
    }
    auto version = image::run_tool({{agent, "--version"}, {}, {}, true});
    if (!version) {
      std::cerr << "FAIL agent does not run: " << version.error().message << "\n";
      rc = 1;
      break;
    }
    std::string v = *version;
    while (!v.empty() && v.back() == '\n') v.pop_back();
    std::cout << "ok   agent " << manifest->agent_path << ": static, sha256 matches, runs (" << v << ")\n";
    if (o.skip_browser) {
      std::cout << "skip Chromium under the sandbox (--skip-browser)\n";
      break;
    }
    node::SandboxConfig config;
    config.state_dir = scratch + "/machines";
    config.cgroup_parent = "kindling-image-check-" + std::to_string(::getpid());
    use_image_root(config, mounted->mount->path());
    auto browser = check_browser_in_sandbox(config, std::cout);
    if (!browser) {
      std::cerr << "FAIL Chromium under the sandbox: " << browser.error().message << "\n";
      rc = 1;
      break;
    }
    std::cout << "ok   Chromium in the image root under the sandbox answers CDP: " << *browser << "\n";
  } while (false);
  if (auto st = mounted->mount->unmount(); !st) {
    std::cerr << "FAIL unmount: " << st.error().message << "\n";
    rc = 1;
  }
  std::error_code ec;
  fs::remove_all(scratch + "/machines", ec);
  ::rmdir(scratch.c_str());
  std::cout << (rc == 0 ? "image OK\n" : "image check FAILED\n");
  return rc;
}

}  // namespace

void add_image_commands(CLI::App& app, std::shared_ptr<int> exit_code) {
  auto* image = app.add_subcommand("image", "Build and check the guest image (docs/image.md)");
  image->require_subcommand(1);

  auto b = std::make_shared<ImageOptions>();
  auto* build = image->add_subcommand("build", "Build the guest root filesystem image from Debian packages (cached)");
  build->add_option("--out", b->dir, "Image store (env KINDLING_IMAGE_DIR, default /var/lib/kindling/images)");
  build->add_option("--agent", b->agent_path, "Static kindling-agent to put in the image (env KINDLING_AGENT)");
  build->add_flag("--force", b->force, "Rebuild even when an image with the same inputs exists");
  build->callback([b, exit_code] { *exit_code = run_build(*b); });

  auto c = std::make_shared<ImageOptions>();
  auto* check = image->add_subcommand("check", "Verify an image: manifest, checksums, agent, Chromium under the sandbox");
  check->add_option("--image", c->dir, "Image store or image directory (default: the store's current image)");
  check->add_flag("--skip-browser", c->skip_browser, "Skip starting Chromium (checks that need no sandbox)");
  check->add_flag("--boot", c->boot, "Also boot the microVM kernel where fast KVM exists (says why when skipped)");
  check->callback([c, exit_code] { *exit_code = run_check(*c); });
}

}  // namespace kindling::cli
