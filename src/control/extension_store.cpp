#include "control/extension_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/clock.hpp"
#include "common/secrets.hpp"
#include "common/unique_fd.hpp"
#include "control/store_folder.hpp"

namespace kindling::control {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxMetaBytes = 64 * 1024;

std::string errno_text() { return std::strerror(errno); }

Status write_file(const std::string& path, std::string_view data, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd.valid()) return make_error("cannot create " + path + ": " + errno_text());
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error("cannot write " + path + ": " + errno_text());
    done += static_cast<std::size_t>(n);
  }
  // The umask may have narrowed the mode; machines read these as "other".
  if (::fchmod(fd.get(), mode) != 0) return make_error("cannot chmod " + path + ": " + errno_text());
  // On disk before the folder is renamed into place (only this upload's
  // own files: syncfs would wait for the whole filesystem).
  if (::fdatasync(fd.get()) != 0) return make_error("cannot sync " + path + ": " + errno_text());
  return ok_status();
}

Status sync_dir(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) return make_error("cannot sync " + path + ": " + errno_text());
  return ok_status();
}

// Makes each missing folder of `relative` below `root`, noting it in `made`
// (to be synced once its entries are written).
Status make_dirs(const std::string& root, const std::string& relative, std::vector<std::string>& made) {
  std::string at = root;
  for (std::size_t pos = 0; pos <= relative.size();) {
    auto slash = relative.find('/', pos);
    if (slash == std::string::npos) slash = relative.size();
    at += "/" + relative.substr(pos, slash - pos);
    if (::mkdir(at.c_str(), 0755) == 0) {
      made.push_back(at);
    } else if (errno != EEXIST) {
      return make_error("cannot create " + at + ": " + errno_text());
    }
    ::chmod(at.c_str(), 0755);
    pos = slash + 1;
  }
  return ok_status();
}

nlohmann::json meta_json(const ExtensionInfo& e) {
  return {{"id", e.id},
          {"name", e.name},
          {"version", e.version},
          {"manifestVersion", e.manifest_version},
          {"description", e.description},
          {"sizeBytes", e.size_bytes},
          {"fileCount", e.file_count},
          {"sha256", e.sha256},
          {"createdAtMs", e.created_at_ms}};
}

// Reads our own meta.json; a damaged one reads as an error, not a crash.
Result<ExtensionInfo> read_meta(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("cannot read " + path);
  std::string text(kMaxMetaBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxMetaBytes) return make_error(path + " is too large");
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return make_error(path + " is not a JSON object");
  ExtensionInfo e;
  try {
    e.id = j.at("id").get<std::string>();
    e.name = j.at("name").get<std::string>();
    e.version = j.at("version").get<std::string>();
    e.manifest_version = j.at("manifestVersion").get<int>();
    e.description = j.value("description", "");
    e.size_bytes = j.at("sizeBytes").get<std::uint64_t>();
    e.file_count = j.at("fileCount").get<std::uint64_t>();
    e.sha256 = j.value("sha256", "");
    e.created_at_ms = j.at("createdAtMs").get<std::int64_t>();
  } catch (const nlohmann::json::exception& ex) {
    return make_error(path + " is damaged: " + ex.what());
  }
  return e;
}

}  // namespace

nlohmann::json to_api_json(const ExtensionInfo& e) {
  nlohmann::json j = {{"id", e.id},
                      {"name", e.name},
                      {"version", e.version},
                      {"manifestVersion", e.manifest_version},
                      {"sizeBytes", e.size_bytes},
                      {"fileCount", e.file_count},
                      {"sha256", e.sha256},
                      {"createdAt", iso8601_utc(e.created_at_ms)}};
  if (!e.description.empty()) j["description"] = e.description;
  return j;
}

bool ExtensionStore::valid_id(std::string_view id) {
  return is_store_id(id);
}

Result<ExtensionStore> ExtensionStore::open(std::string dir, ExtensionArchiveLimits limits) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error("cannot create " + dir + ": " + ec.message());
  // Machines never see this folder (each one binds an extension's files/);
  // 0711 lets nobody else on the host list it.
  ::chmod(dir.c_str(), 0711);
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    auto name = entry.path().filename().string();
    if (is_store_leftover(name)) fs::remove_all(entry.path(), ec);
  }
  if (ec) return make_error("cannot clean " + dir + ": " + ec.message());
  return ExtensionStore(std::move(dir), limits);
}

Result<ExtensionInfo> ExtensionStore::add(std::string_view zip) {
  KINDLING_TRY(archive, read_extension_archive(zip, limits_));
  KINDLING_TRY(existing, list());
  if (existing.size() >= kMaxExtensions)
    return make_error("the server already stores " + std::to_string(kMaxExtensions) +
                          " extensions; delete one first",
                      "conflict");

  ExtensionInfo info;
  info.id = random_hex(12);
  info.name = archive.manifest.name;
  info.version = archive.manifest.version;
  info.manifest_version = archive.manifest.manifest_version;
  info.description = archive.manifest.description;
  info.size_bytes = archive.total_bytes;
  info.file_count = archive.files.size();
  info.sha256 = sha256_hex(zip);
  info.created_at_ms = unix_millis();

  const std::string temp = dir_ + "/" + std::string(kStoreTempPrefix) + info.id;
  struct Cleanup {
    std::string path;
    ~Cleanup() {
      std::error_code ec;
      if (!path.empty()) fs::remove_all(path, ec);
    }
  } cleanup{temp};
  if (::mkdir(temp.c_str(), 0700) != 0) return make_error("cannot create " + temp + ": " + errno_text());
  const std::string files = temp + "/files";
  if (::mkdir(files.c_str(), 0755) != 0 || ::chmod(files.c_str(), 0755) != 0)
    return make_error("cannot create " + files + ": " + errno_text());
  // Names were checked by the archive reader (relative, no '..', no links),
  // and everything below `files` was made here, so no path can lead out.
  std::vector<std::string> made = {files, temp};
  for (const auto& dir : archive.empty_dirs)
    if (auto st = make_dirs(files, dir, made); !st) return st.error();
  for (const auto& f : archive.files) {
    if (auto slash = f.path.rfind('/'); slash != std::string::npos)
      if (auto st = make_dirs(files, f.path.substr(0, slash), made); !st) return st.error();
    if (auto st = write_file(files + "/" + f.path, f.data, 0644); !st) return st.error();
  }
  if (auto st = write_file(temp + "/meta.json", meta_json(info).dump(), 0600); !st) return st.error();
  // Every entry on disk before the folder becomes visible under its id.
  for (const auto& dir : made)
    if (auto st = sync_dir(dir); !st) return st.error();
  const std::string final_dir = dir_ + "/" + info.id;
  if (::rename(temp.c_str(), final_dir.c_str()) != 0)
    return make_error("cannot move " + temp + " to " + final_dir + ": " + errno_text());
  cleanup.path.clear();
  UniqueFd parent(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (parent.valid()) ::fsync(parent.get());
  return info;
}

Result<std::vector<ExtensionInfo>> ExtensionStore::list() const {
  std::vector<ExtensionInfo> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    auto name = entry.path().filename().string();
    if (!valid_id(name)) continue;
    auto info = read_meta(entry.path().string() + "/meta.json");
    if (!info) return info.error();
    out.push_back(std::move(info.value()));
  }
  if (ec) return make_error("cannot list " + dir_ + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const ExtensionInfo& a, const ExtensionInfo& b) {
    return a.created_at_ms != b.created_at_ms ? a.created_at_ms > b.created_at_ms : a.id < b.id;
  });
  return out;
}

Result<ExtensionInfo> ExtensionStore::get(const std::string& id) const {
  if (!valid_id(id)) return make_error("no extension with id '" + id.substr(0, 64) + "'", "not_found");
  struct stat st{};
  if (::lstat((dir_ + "/" + id).c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return make_error("no extension with id '" + id + "'", "not_found");
  return read_meta(dir_ + "/" + id + "/meta.json");
}

Status ExtensionStore::remove(const std::string& id) {
  KINDLING_TRY(found, get(id));
  (void)found;
  return remove_store_entry(dir_, id, "extension");
}

}  // namespace kindling::control
