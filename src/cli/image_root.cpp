#include "cli/image_root.hpp"

#include <cstdlib>
#include <string>
#include <vector>
#include <filesystem>

#include "image/image_build.hpp"
#include "image/image_recipe.hpp"

namespace kindling::cli {

namespace fs = std::filesystem;

Result<MountedImage> mount_verified_image(const std::string& dir, const std::string& mount_point) {
  std::string image_dir = image::resolve_image_dir(dir);
  auto manifest = image::verify_image_dir(image_dir);
  if (!manifest)
    return make_error(manifest.error().message + " (build one with `kindling image build --out " + dir + "`)");
  KINDLING_TRY(mount, image::ImageMount::mount(image_dir + "/" + manifest->image_file, mount_point));
  return MountedImage{image_dir, std::move(manifest).value(), std::move(mount)};
}

void use_image_root(node::SandboxConfig& config, const std::string& mount_path) {
  config.system_root = mount_path;
  config.agent_path = mount_path + image::kAgentPathInImage;
  // The font caches fc-cache wrote at build time: without them every
  // Chromium would scan the fonts again into its own home.
  config.readonly_binds.push_back("/var/cache/fontconfig");
}

std::string find_agent(const std::string& configured) {
  if (!configured.empty()) return configured;
  if (const char* env = std::getenv("KINDLING_AGENT"); env && *env) return env;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  for (auto candidate : {self.parent_path() / "kindling-agent", self.parent_path() / ".." / "agent" / "kindling-agent"})
    if (fs::exists(candidate, ec)) return fs::weakly_canonical(candidate, ec).string();
  return {};
}

std::string find_init() {
  if (const char* env = std::getenv("KINDLING_INIT"); env && *env) return env;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  for (auto candidate : {self.parent_path() / "kindling-init", self.parent_path() / ".." / "image" / "kindling-init"})
    if (fs::exists(candidate, ec)) return fs::weakly_canonical(candidate, ec).string();
  return {};
}

}  // namespace kindling::cli
