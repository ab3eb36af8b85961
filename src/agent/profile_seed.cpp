#include "agent/profile_seed.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/unique_fd.hpp"

namespace kindling::agent {

namespace {

struct Copy {
  uid_t uid;
  gid_t gid;
  std::size_t entries = 0;
  unsigned long long bytes = 0;
};

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

Status own(int fd, const Copy& c, const std::string& what) {
  if (::fchown(fd, c.uid, c.gid) != 0 && !(errno == EPERM && c.uid == ::geteuid()))
    return make_error(errno_text("cannot give " + what + " to the browser user"));
  return ok_status();
}

Status copy_file(int from, int to_dir, const char* name, Copy& c, const std::string& shown) {
  UniqueFd out(::openat(to_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out.valid()) return make_error(errno_text("cannot create " + shown));
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(errno_text("cannot read the seed's " + shown));
    if (n == 0) break;
    c.bytes += static_cast<unsigned long long>(n);
    if (c.bytes > kMaxSeedBytes) return make_error("the profile seed is larger than 1 GiB");
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out.get(), buf + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return make_error(errno_text("cannot write " + shown));
      done += w;
    }
  }
  return own(out.get(), c, shown);
}

Status copy_dir(int from, int to, Copy& c, const std::string& shown, std::size_t depth) {
  if (depth > kMaxSeedDepth) return make_error("the profile seed is deeper than " + std::to_string(kMaxSeedDepth));
  UniqueFd listing(::dup(from));
  DIR* d = listing.valid() ? ::fdopendir(listing.get()) : nullptr;
  if (!d) return make_error(errno_text("cannot list the seed's " + shown));
  listing.release();
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
    if (names.size() > kMaxSeedEntries) break;
  }
  ::closedir(d);
  for (const auto& name : names) {
    if (++c.entries > kMaxSeedEntries)
      return make_error("the profile seed has more than " + std::to_string(kMaxSeedEntries) + " entries");
    const std::string path = shown + "/" + name;
    UniqueFd src(::openat(from, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!src.valid()) continue;  // a link or something unreadable: not part of a profile
    struct stat st {};
    if (::fstat(src.get(), &st) != 0) return make_error(errno_text("stat " + path));
    if (S_ISREG(st.st_mode)) {
      if (auto r = copy_file(src.get(), to, name.c_str(), c, path); !r) return r;
    } else if (S_ISDIR(st.st_mode)) {
      if (::mkdirat(to, name.c_str(), 0700) != 0) return make_error(errno_text("cannot create " + path));
      UniqueFd dst(::openat(to, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dst.valid()) return make_error(errno_text("cannot open " + path));
      if (auto r = own(dst.get(), c, path); !r) return r;
      if (auto r = copy_dir(src.get(), dst.get(), c, path, depth + 1); !r) return r;
    }
  }
  return ok_status();
}

}  // namespace

Status copy_profile_seed(const std::string& seed, const std::string& user_data_dir, uid_t uid, gid_t gid) {
  UniqueFd from(::open(seed.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!from.valid()) return make_error(errno_text("cannot open the profile seed " + seed));
  UniqueFd to(::open(user_data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!to.valid()) return make_error(errno_text("cannot open " + user_data_dir));
  Copy c{uid, gid};
  return copy_dir(from.get(), to.get(), c, user_data_dir, 1);
}

}  // namespace kindling::agent
