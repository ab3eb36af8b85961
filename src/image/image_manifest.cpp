#include "image/image_manifest.hpp"

#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/secrets.hpp"
#include "image/file_digest.hpp"

namespace kindling::image {
namespace {

using nlohmann::json;

json body_json(const ImageManifest& m) {
  json packages = json::array();
  for (auto& p : m.packages) packages.push_back({{"name", p.name}, {"version", p.version}, {"installed_kib", p.installed_kib}});
  return json{
      {"format", m.format},
      {"key", m.key},
      {"suite", m.suite},
      {"chromium_version", m.chromium_version},
      {"image", {{"file", m.image_file}, {"filesystem", m.filesystem}, {"compression", m.compression},
                 {"bytes", m.image_bytes}, {"sha256", m.image_sha256}}},
      {"rootfs_bytes", m.rootfs_bytes},
      {"agent", {{"path", m.agent_path}, {"bytes", m.agent_bytes}, {"sha256", m.agent_sha256}}},
      {"packages", packages},
      {"boot", {{"kernel_package", m.boot.kernel_package}, {"kernel_version", m.boot.kernel_version},
                {"kernel", {{"file", m.boot.kernel_file}, {"bytes", m.boot.kernel_bytes}, {"sha256", m.boot.kernel_sha256}}},
                {"initramfs", {{"file", m.boot.initramfs_file}, {"bytes", m.boot.initramfs_bytes},
                               {"sha256", m.boot.initramfs_sha256}}},
                {"modules", m.boot.modules}, {"builtin_modules", m.boot.builtin_modules}, {"cmdline", m.boot.cmdline}}},
      {"inputs", {{"recipe_sha256", m.recipe_sha256}, {"candidates", m.candidates},
                  {"source_date_epoch", m.source_date_epoch}}},
      {"step_seconds", m.step_seconds},
      {"built_by", m.built_by},
  };
}

bool is_hex_sha256(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

std::string manifest_text(const ImageManifest& m) {
  json j = body_json(m);
  j["manifest_sha256"] = sha256_hex(body_json(m).dump());
  return j.dump(2) + "\n";
}

Result<ImageManifest> parse_manifest(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error("manifest is not valid JSON");
  try {
    ImageManifest m;
    m.format = j.at("format").get<int>();
    if (m.format != 1) return make_error("manifest format " + std::to_string(m.format) + " is not supported (expected 1)");
    m.key = j.at("key").get<std::string>();
    m.suite = j.at("suite").get<std::string>();
    m.chromium_version = j.at("chromium_version").get<std::string>();
    const json& image = j.at("image");
    m.image_file = image.at("file").get<std::string>();
    m.filesystem = image.at("filesystem").get<std::string>();
    m.compression = image.at("compression").get<std::string>();
    m.image_bytes = image.at("bytes").get<std::uint64_t>();
    m.image_sha256 = image.at("sha256").get<std::string>();
    m.rootfs_bytes = j.at("rootfs_bytes").get<std::uint64_t>();
    const json& agent = j.at("agent");
    m.agent_path = agent.at("path").get<std::string>();
    m.agent_bytes = agent.at("bytes").get<std::uint64_t>();
    m.agent_sha256 = agent.at("sha256").get<std::string>();
    for (const auto& p : j.at("packages"))
      m.packages.push_back({p.at("name").get<std::string>(), p.at("version").get<std::string>(),
                            p.at("installed_kib").get<std::uint64_t>()});
    const json& boot = j.at("boot");
    m.boot.kernel_package = boot.at("kernel_package").get<std::string>();
    m.boot.kernel_version = boot.at("kernel_version").get<std::string>();
    m.boot.kernel_file = boot.at("kernel").at("file").get<std::string>();
    m.boot.kernel_bytes = boot.at("kernel").at("bytes").get<std::uint64_t>();
    m.boot.kernel_sha256 = boot.at("kernel").at("sha256").get<std::string>();
    m.boot.initramfs_file = boot.at("initramfs").at("file").get<std::string>();
    m.boot.initramfs_bytes = boot.at("initramfs").at("bytes").get<std::uint64_t>();
    m.boot.initramfs_sha256 = boot.at("initramfs").at("sha256").get<std::string>();
    m.boot.modules = boot.at("modules").get<std::vector<std::string>>();
    m.boot.builtin_modules = boot.at("builtin_modules").get<std::vector<std::string>>();
    m.boot.cmdline = boot.at("cmdline").get<std::string>();
    const json& inputs = j.at("inputs");
    m.recipe_sha256 = inputs.at("recipe_sha256").get<std::string>();
    m.candidates = inputs.at("candidates").get<std::string>();
    m.source_date_epoch = inputs.at("source_date_epoch").get<std::int64_t>();
    m.step_seconds = j.at("step_seconds").get<std::map<std::string, double>>();
    m.built_by = j.at("built_by").get<std::string>();
    std::string recorded = j.at("manifest_sha256").get<std::string>();
    std::string actual = sha256_hex(body_json(m).dump());
    if (recorded != actual)
      return make_error("manifest was modified after the build: its manifest_sha256 is " + recorded +
                        " but its content hashes to " + actual);
    for (const auto* f : {&m.image_file, &m.boot.kernel_file, &m.boot.initramfs_file})
      if (f->empty() || f->find('/') != std::string::npos || (*f)[0] == '.')
        return make_error("manifest names an invalid file '" + *f + "'");
    if (!is_hex_sha256(m.image_sha256) || !is_hex_sha256(m.agent_sha256) || !is_hex_sha256(m.key) ||
        !is_hex_sha256(m.boot.kernel_sha256) || !is_hex_sha256(m.boot.initramfs_sha256))
      return make_error("manifest has a malformed sha256 field");
    if (m.filesystem != "squashfs") return make_error("manifest names filesystem '" + m.filesystem + "', expected squashfs");
    return m;
  } catch (const json::exception& e) {
    return make_error(std::string("manifest is missing a field or has a wrong type: ") + e.what());
  }
}

Result<ImageManifest> verify_image_dir(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  std::ifstream in(path);
  if (!in) return make_error("no manifest at " + path + " (not an image directory, or its build did not finish)");
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = parse_manifest(text.str());
  if (!parsed) return make_error(path + ": " + parsed.error().message);
  ImageManifest m = std::move(parsed).value();
  struct Expected {
    const std::string& file;
    std::uint64_t bytes;
    const std::string& sha256;
  };
  for (const Expected& e : {Expected{m.image_file, m.image_bytes, m.image_sha256},
                            Expected{m.boot.kernel_file, m.boot.kernel_bytes, m.boot.kernel_sha256},
                            Expected{m.boot.initramfs_file, m.boot.initramfs_bytes, m.boot.initramfs_sha256}}) {
    const std::string file = dir + "/" + e.file;
    struct stat st{};
    if (::stat(file.c_str(), &st) != 0) return make_error("image file " + file + " is missing");
    if (static_cast<std::uint64_t>(st.st_size) != e.bytes)
      return make_error("image file " + file + " has " + std::to_string(st.st_size) + " bytes, the manifest says " +
                        std::to_string(e.bytes) + ": it was modified or truncated");
    KINDLING_TRY(sha, sha256_file(file));
    if (sha != e.sha256)
      return make_error("image file " + file + " has sha256 " + sha + ", the manifest says " + e.sha256 +
                        ": it was modified");
  }
  return m;
}

std::vector<PackageEntry> parse_package_list(const std::string& output) {
  std::vector<PackageEntry> out;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    auto t1 = line.find('\t');
    auto t2 = line.find('\t', t1 == std::string::npos ? t1 : t1 + 1);
    if (t1 == std::string::npos || t2 == std::string::npos) continue;
    PackageEntry p{line.substr(0, t1), line.substr(t1 + 1, t2 - t1 - 1), 0};
    try {
      p.installed_kib = std::stoull(line.substr(t2 + 1));
    } catch (...) {
    }
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

}  // namespace kindling::image
