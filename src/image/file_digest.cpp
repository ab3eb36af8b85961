#include "image/file_digest.hpp"
#include "image/image_mount.hpp"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "common/secrets.hpp"
#include "common/unique_fd.hpp"

namespace kindling::image {
namespace {

std::uint64_t g_tree_bytes = 0;

// Hard links share their bytes: count each inode once (Debian's root has
// hundreds of MB of linked files, so otherwise the figure is far off).
std::set<std::pair<dev_t, ino_t>> g_seen_links;

int add_size(const char*, const struct stat* st, int type, struct FTW*) {
  if (type != FTW_F || !S_ISREG(st->st_mode)) return 0;
  if (st->st_nlink > 1 && !g_seen_links.insert({st->st_dev, st->st_ino}).second) return 0;
  g_tree_bytes += static_cast<std::uint64_t>(st->st_size);
  return 0;
}

int remove_entry(const char* path, const struct stat*, int type, struct FTW*) {
  int rc = type == FTW_DP ? ::rmdir(path) : ::unlink(path);
  return rc == 0 || errno == ENOENT ? 0 : errno;
}

// Mount points strictly below `dir`, deepest first.
std::vector<std::string> mounts_below(const std::string& dir) {
  std::vector<std::string> found;
  for (auto& point : mount_points())
    if (point.size() > dir.size() && point.compare(0, dir.size(), dir) == 0 && point[dir.size()] == '/')
      found.push_back(std::move(point));
  std::sort(found.begin(), found.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  return found;
}

}  // namespace

Result<std::string> sha256_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return make_error("cannot open " + path + ": " + std::strerror(errno));
  int error = 0;
  std::string digest = sha256_hex_of_fd(fd.get(), error);
  if (error) return make_error("cannot read " + path + ": " + std::strerror(error));
  return digest;
}

std::uint64_t tree_bytes(const std::string& dir) {
  g_tree_bytes = 0;
  g_seen_links.clear();
  ::nftw(dir.c_str(), add_size, 64, FTW_PHYS | FTW_MOUNT);
  g_seen_links.clear();
  return g_tree_bytes;
}

Status remove_tree_one_fs(const std::string& dir) {
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0) return ok_status();
  for (const auto& point : mounts_below(dir)) ::umount2(point.c_str(), MNT_DETACH);
  if (!mounts_below(dir).empty()) return make_error("cannot detach the mounts left below " + dir);
  int rc = ::nftw(dir.c_str(), remove_entry, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  if (rc != 0) return make_error("cannot remove " + dir + ": " + std::strerror(rc > 0 ? rc : errno));
  return ok_status();
}

}  // namespace kindling::image
