#include "control/session_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "common/secrets.hpp"

namespace kindling::control {

namespace {

constexpr std::string_view kInProgressSuffix = ".crdownload";

Result<std::string> sha256_of_fd(int fd) {
  int error = 0;
  std::string digest = sha256_hex_of_fd(fd, error);
  if (error) return make_error(std::string("read: ") + std::strerror(error));
  return digest;
}

// O_NOFOLLOW refuses a link as the last component; O_NONBLOCK keeps a FIFO
// the machine put there from blocking us before fstat sees what it is.
Result<UniqueFd> open_plain(int dir, const std::string& name, struct stat& st) {
  UniqueFd fd(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return make_error("no file '" + name + "'", "not_found");
    if (errno == ELOOP) return make_error("'" + name + "' is not a plain file", "not_found");
    return make_error("cannot open '" + name + "': " + std::strerror(errno));
  }
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return make_error("'" + name + "' is not a plain file", "not_found");
  int flags = ::fcntl(fd.get(), F_GETFL);
  ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

DigestCache::Key key_of(const struct stat& st) {
  return {static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_size),
          st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
          st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec};
}

}  // namespace

const std::string* DigestCache::find(const std::string& name, const Key& key) const {
  auto it = entries_.find(name);
  return it != entries_.end() && it->second.first == key ? &it->second.second : nullptr;
}

void DigestCache::put(const std::string& name, const Key& key, std::string digest) {
  entries_[name] = {key, std::move(digest)};
}

void DigestCache::keep_only(const std::vector<std::string>& kept) {
  std::map<std::string, std::pair<Key, std::string>> next;
  for (const auto& name : kept)
    if (auto it = entries_.find(name); it != entries_.end()) next.insert(std::move(*it));
  entries_ = std::move(next);
}

Status check_file_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return make_error("a file name must be 1 to 255 bytes", "bad_request");
  if (name == "." || name == "..") return make_error("'" + std::string(name) + "' is not a file name", "bad_request");
  for (unsigned char c : name)
    if (c == '/' || c < 0x20 || c == 0x7f)
      return make_error("a file name must not contain '/' or control characters", "bad_request");
  return ok_status();
}

Result<std::vector<SessionFile>> list_session_files(int dir, std::size_t max_files, DigestCache* cache) {
  // A dup of our own: closedir() closes what fdopendir() was given.
  int copy = ::fcntl(dir, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return make_error(std::string("dup: ") + std::strerror(errno));
  struct CloseDir {
    void operator()(DIR* d) const { ::closedir(d); }
  };
  std::unique_ptr<DIR, CloseDir> d(::fdopendir(copy));
  if (!d) {
    ::close(copy);
    return make_error(std::string("cannot read the directory: ") + std::strerror(errno));
  }
  ::rewinddir(d.get());
  std::vector<SessionFile> out;
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    if (!check_file_name(name)) continue;
    if (out.size() >= max_files) break;
    struct stat st{};
    if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    SessionFile f;
    f.size = static_cast<std::uint64_t>(st.st_size);
    if (name.size() > kInProgressSuffix.size() && name.ends_with(kInProgressSuffix)) {
      f.name = name.substr(0, name.size() - kInProgressSuffix.size());
    } else {
      f.name = name;
      f.complete = true;
      auto fd = open_plain(dir, name, st);
      if (!fd) continue;  // gone or replaced since readdir
      f.size = static_cast<std::uint64_t>(st.st_size);
      // The key of the open file, so a digest is never paired with another file's.
      auto key = key_of(st);
      if (const std::string* known = cache ? cache->find(name, key) : nullptr) {
        f.sha256 = *known;
      } else {
        auto digest = sha256_of_fd(fd->get());
        if (!digest) continue;
        // Written to while read: report it, but don't remember that digest.
        struct stat after{};
        if (cache && ::fstat(fd->get(), &after) == 0 && key_of(after) == key) cache->put(name, key, *digest);
        f.sha256 = *digest;
      }
    }
    out.push_back(std::move(f));
  }
  if (cache) {
    std::vector<std::string> kept;
    for (const auto& f : out)
      if (f.complete) kept.push_back(f.name);
    cache->keep_only(kept);
  }
  std::sort(out.begin(), out.end(), [](const SessionFile& a, const SessionFile& b) { return a.name < b.name; });
  return out;
}

Result<UniqueFd> open_session_file(int dir, const std::string& name, std::uint64_t& size) {
  if (auto ok = check_file_name(name); !ok) return ok.error();
  struct stat st{};
  auto fd = open_plain(dir, name, st);
  if (fd) size = static_cast<std::uint64_t>(st.st_size);
  return fd;
}

Result<SessionFile> write_session_file(int fd, const std::string& name, std::string_view data) {
  for (std::size_t done = 0; done < data.size();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno == ENOSPC || errno == EDQUOT) return make_error("the machine's scratch space is full", "payload_too_large");
      return make_error("cannot write '" + name + "': " + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  SessionFile f;
  f.name = name;
  f.size = data.size();
  f.complete = true;
  f.sha256 = sha256_hex(data);
  return f;
}

}  // namespace kindling::control
