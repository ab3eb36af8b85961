#include "image/file_digest.hpp"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
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

// Mount points strictly below `dir`, deepest first, from /proc/self/mountinfo.
std::vector<std::string> mounts_below(const std::string& dir) {
  std::vector<std::string> found;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    // id parent major:minor root mountpoint ...
    std::size_t pos = 0;
    for (int field = 0; field < 4 && pos != std::string::npos; ++field) pos = line.find(' ', pos + 1);
    if (pos == std::string::npos) continue;
    std::size_t end = line.find(' ', pos + 1);
    std::string point = line.substr(pos + 1, end - pos - 1);
    if (point.size() > dir.size() && point.compare(0, dir.size(), dir) == 0 && point[dir.size()] == '/')
      found.push_back(point);
  }
  std::sort(found.begin(), found.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  return found;
}

}  // namespace

Result<std::string> sha256_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return make_error("cannot open " + path + ": " + std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return make_error("sha256: OpenSSL init failed");
  std::vector<unsigned char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error("cannot read " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
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
