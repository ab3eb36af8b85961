#include "control/profile_collect.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/unique_fd.hpp"

namespace kindling::control {

namespace {

// In Default/: the state a login leaves behind. History, favicons and the
// like are not needed to stay logged in and are left out.
constexpr std::string_view kDefaultFiles[] = {
    "Cookies",  "Cookies-journal",  "Preferences", "Secure Preferences",
    "Web Data", "Web Data-journal", "Login Data",  "Login Data-journal",
};
// In Default/: kept whole, minus caches.
constexpr std::string_view kDefaultDirs[] = {
    "Local Storage",  "Session Storage", "IndexedDB", "WebStorage",
    "Service Worker", "File System",     "databases", "Network",
};
// Never kept, at any depth: caches Chromium rebuilds, and crash dumps.
constexpr std::string_view kSkipped[] = {
    "Cache",           "Code Cache",    "GPUCache",          "ShaderCache",  "DawnCache", "DawnGraphiteCache",
    "DawnWebGPUCache", "GrShaderCache", "GraphiteDawnCache", "CacheStorage", "Crashpad",  "blob_storage",
};

template <std::size_t N>
bool among(std::string_view name, const std::string_view (&set)[N]) {
  return std::find(std::begin(set), std::end(set), name) != std::end(set);
}

struct Walk {
  const ProfileLimits& limits;
  std::vector<ProfileEntry> entries;
  std::uint64_t total = 0;
  // Every name looked at, kept or not: links and FIFOs are skipped without
  // counting as entries, so this bounds the walk's work on its own.
  std::size_t looked_at = 0;
};

Status too_large(const ProfileLimits& limits, const std::string& at) {
  return make_error("the profile is larger than the size cap of " + std::to_string(limits.max_total_bytes) +
                        " bytes (reached at '" + at.substr(0, 200) + "'); the previous version is kept",
                    "payload_too_large");
}

Status read_file(int fd, std::uint64_t size, std::string& out) {
  out.resize(size);
  std::size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(std::string("read failed: ") + std::strerror(errno));
    if (n == 0) break;  // shrank since fstat: keep what is there
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return ok_status();
}

Status walk(Walk& w, int dir, const std::string& prefix, std::size_t depth) {
  if (depth > w.limits.max_depth) return ok_status();  // deeper than any profile needs: skipped
  UniqueFd listing(::dup(dir));
  if (!listing.valid()) return make_error(std::string("dup: ") + std::strerror(errno));
  DIR* d = ::fdopendir(listing.get());
  if (!d) return make_error("cannot list '" + prefix + "': " + std::strerror(errno));
  listing.release();
  ::rewinddir(d);  // a dup shares the offset of the folder descriptor, which may have been read
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
    if (names.size() > w.limits.max_entries) break;
  }
  ::closedir(d);
  // A partial listing would save a partial profile: refuse instead.
  if (names.size() > w.limits.max_entries)
    return make_error("'" + (prefix.empty() ? std::string(".") : prefix.substr(0, 200)) + "' holds more than " +
                          std::to_string(w.limits.max_entries) + " names; the previous version is kept",
                      "payload_too_large");
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    if (++w.looked_at > 4 * w.limits.max_entries)
      return make_error("the profile folder holds more than " + std::to_string(4 * w.limits.max_entries) +
                            " names; the previous version is kept",
                        "payload_too_large");
    const std::string path = prefix.empty() ? name : prefix + "/" + name;
    if (!check_profile_path(path, w.limits)) continue;  // a name the archive cannot hold: not Chromium's
    UniqueFd fd(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) continue;  // a link (ELOOP), gone, or unreadable: not kept
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) continue;
    const bool is_dir = S_ISDIR(st.st_mode);
    if (!is_dir && !S_ISREG(st.st_mode)) continue;
    if (!keep_profile_path(path, is_dir)) continue;
    if (w.entries.size() >= w.limits.max_entries)
      return make_error("the profile has more than " + std::to_string(w.limits.max_entries) +
                            " files and folders; the previous version is kept",
                        "payload_too_large");
    ProfileEntry entry;
    entry.path = path;
    entry.directory = is_dir;
    if (is_dir) {
      w.entries.push_back(std::move(entry));
      if (auto st2 = walk(w, fd.get(), path, depth + 1); !st2) return st2;
      continue;
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > w.limits.max_total_bytes - w.total) return too_large(w.limits, path);
    if (auto r = read_file(fd.get(), size, entry.data); !r) return make_error("'" + path + "': " + r.error().message);
    w.total += entry.data.size();
    w.entries.push_back(std::move(entry));
  }
  return ok_status();
}

}  // namespace

bool keep_profile_path(std::string_view path, bool directory) {
  std::size_t depth = 0;
  std::string_view first, second;
  for (std::size_t start = 0;;) {
    auto slash = path.find('/', start);
    std::string_view part =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (depth == 0) first = part;
    if (depth == 1) second = part;
    if (among(part, kSkipped)) return false;
    ++depth;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (depth == 1) return directory ? first == "Default" : first == "Local State";
  if (first != "Default") return false;
  if (depth == 2) return directory ? among(second, kDefaultDirs) : among(second, kDefaultFiles);
  return among(second, kDefaultDirs);
}

Result<std::vector<ProfileEntry>> collect_profile(int dir, const ProfileLimits& limits) {
  Walk w{limits, {}, 0};
  if (auto st = walk(w, dir, "", 1); !st) return st.error();
  return std::move(w.entries);
}

}  // namespace kindling::control
