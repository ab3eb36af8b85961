#include "image/image_recipe.hpp"

#include <algorithm>
#include <map>
#include <sstream>

#include "common/secrets.hpp"
#include "image/tool_run.hpp"

namespace kindling::image {

ImageRecipe default_recipe() {
  ImageRecipe r;
  // The same archive the host installs from (deb.debian.org), with updates
  // and security: the image gets the Chromium security releases.
  r.sources = {
      "deb http://deb.debian.org/debian bookworm main",
      "deb http://deb.debian.org/debian bookworm-updates main",
      "deb http://deb.debian.org/debian-security bookworm-security main",
  };
  // Liberation: metric-compatible Arial/Times/Courier. Noto Color Emoji
  // (~10 MB) and Droid Sans Fallback (CJK, ~4 MB) are the smallest fallbacks
  // that make real pages render (fonts-noto-cjk would add ~90 MB).
  r.packages = {"chromium", "fonts-liberation", "fonts-noto-color-emoji", "fonts-droid-fallback",
                "ca-certificates", "tzdata"};
  // Debian's cloud flavour: built for hypervisors (virtio, no hardware
  // drivers), so its modules directory is a fraction of the generic one.
  r.kernel_package = "linux-image-cloud-amd64";
  r.dpkg_options = {
      "path-exclude=/usr/share/doc/*",
      "path-include=/usr/share/doc/*/copyright",  // licences stay
      "path-exclude=/usr/share/man/*",
      "path-exclude=/usr/share/info/*",
      "path-exclude=/usr/share/locale/*",         // gettext catalogues: nothing here is translated
      "path-exclude=/usr/share/lintian/*",
      "path-exclude=/usr/share/bug/*",
  };
  r.source_date_epoch = 1704067200;  // 2024-01-01T00:00:00Z
  r.zstd_level = 19;
  r.block_size = "1M";
  return r;
}

std::string recipe_text(const ImageRecipe& r) {
  std::ostringstream out;
  out << "format " << r.format << "\n"
      << "suite " << r.suite << "\nvariant " << r.variant << "\n";
  for (auto& s : r.sources) out << "source " << s << "\n";
  for (auto& p : r.packages) out << "package " << p << "\n";
  out << "kernel " << r.kernel_package << "\n";
  for (auto& d : r.dpkg_options) out << "dpkg " << d << "\n";
  out << "epoch " << r.source_date_epoch << "\nzstd " << r.zstd_level << "\nblock " << r.block_size << "\n"
      << "agent " << kAgentPathInImage << "\n";
  return out.str();
}

std::vector<std::string> mmdebstrap_argv(const ImageRecipe& r, const std::string& target_dir) {
  std::vector<std::string> argv = {"mmdebstrap", "--mode=root", "--format=directory", "--variant=" + r.variant};
  std::string include;
  for (auto& p : r.packages) include += (include.empty() ? "" : ",") + p;
  argv.push_back("--include=" + include);
  for (auto& d : r.dpkg_options) argv.push_back("--dpkgopt=" + d);
  argv.push_back(r.suite);
  argv.push_back(target_dir);
  for (auto& s : r.sources) argv.push_back(s);
  return argv;
}

std::vector<std::string> mksquashfs_argv(const ImageRecipe& r, const std::string& source_dir,
                                         const std::string& image_file) {
  const std::string epoch = std::to_string(r.source_date_epoch);
  return {"mksquashfs", source_dir, image_file, "-noappend", "-no-progress", "-quiet",
          "-comp", "zstd", "-Xcompression-level", std::to_string(r.zstd_level), "-b", r.block_size,
          "-no-xattrs", "-all-time", epoch, "-mkfs-time", epoch};
}

Result<std::string> parse_apt_policy(const std::string& output, const std::vector<std::string>& packages) {
  std::map<std::string, std::string> candidate;
  std::istringstream in(output);
  std::string current;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != ' ' && line.back() == ':') {
      current = line.substr(0, line.size() - 1);
      continue;
    }
    auto at = line.find("Candidate:");
    if (at != std::string::npos && !current.empty()) {
      std::string v = line.substr(at + 10);
      v.erase(0, v.find_first_not_of(' '));
      candidate[current] = v;
    }
  }
  std::vector<std::string> lines;
  for (auto& p : packages) {
    auto it = candidate.find(p);
    if (it == candidate.end() || it->second.empty() || it->second == "(none)")
      return make_error("apt-cache knows no candidate version of " + p + " (run apt-get update)");
    lines.push_back(p + " " + it->second);
  }
  std::sort(lines.begin(), lines.end());
  std::string text;
  for (auto& l : lines) text += l + "\n";
  return text;
}

Result<std::string> candidate_versions(const ImageRecipe& r) {
  ToolRun run;
  run.argv = {"apt-cache", "policy"};
  std::vector<std::string> all = r.packages;
  all.push_back(r.kernel_package);
  run.argv.insert(run.argv.end(), all.begin(), all.end());
  run.capture_stdout = true;
  KINDLING_TRY(out, run_tool(run));
  return parse_apt_policy(out, all);
}

std::string cache_key(const std::string& recipe, const std::string& candidates, const std::string& agent_sha256,
                      const std::string& init_sha256) {
  return sha256_hex("kindling-image\n" + recipe + "--\n" + candidates + "--\nagent-sha256 " + agent_sha256 +
                    "\ninit-sha256 " + init_sha256 + "\n");
}

}  // namespace kindling::image
