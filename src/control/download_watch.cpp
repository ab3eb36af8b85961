#include "control/download_watch.hpp"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace kindling::control {

namespace {

constexpr std::string_view kInProgressSuffix = ".crdownload";

std::string printable(std::string_view raw) {
  std::string out(raw.substr(0, 255));
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

}  // namespace

DownloadWatch::DownloadWatch(boost::asio::io_context& io, UniqueFd dir, OnComplete on_complete, OnCapped on_capped)
    : dir_(std::move(dir)), inotify_(io), on_complete_(std::move(on_complete)), on_capped_(std::move(on_capped)) {}

DownloadWatch::~DownloadWatch() {
  *alive_ = false;
  boost::system::error_code ignored;
  inotify_.close(ignored);
}

Result<std::unique_ptr<DownloadWatch>> DownloadWatch::start(boost::asio::io_context& io, UniqueFd dir,
                                                            OnComplete on_complete, OnCapped on_capped) {
  UniqueFd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd.valid()) return make_error(std::string("inotify_init1: ") + std::strerror(errno));
  // Through the open descriptor's /proc link: the very directory that was
  // opened without following links, whatever its path names now.
  std::string self = "/proc/self/fd/" + std::to_string(dir.get());
  if (::inotify_add_watch(fd.get(), self.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR) < 0)
    return make_error(std::string("inotify_add_watch on the downloads area: ") + std::strerror(errno));
  std::unique_ptr<DownloadWatch> watch(
      new DownloadWatch(io, std::move(dir), std::move(on_complete), std::move(on_capped)));
  watch->inotify_.assign(fd.release());
  watch->read_more();
  return watch;
}

void DownloadWatch::read_more() {
  inotify_.async_read_some(boost::asio::buffer(buffer_),
                           [this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec, std::size_t n) {
                             if (alive.expired() || ec) return;
                             handle(n);
                             if (reported_ <= kMaxReports) read_more();
                           });
}

void DownloadWatch::handle(std::size_t bytes) {
  // The kernel writes whole events; their names come from the machine.
  std::size_t at = 0;
  while (at + sizeof(inotify_event) <= bytes) {
    inotify_event event;
    std::memcpy(&event, buffer_.data() + at, sizeof event);
    std::size_t end = at + sizeof(inotify_event) + event.len;
    if (end > bytes) break;
    if (event.len && !(event.mask & IN_ISDIR)) {
      std::string_view name(buffer_.data() + at + sizeof(inotify_event), event.len);
      name = name.substr(0, name.find('\0'));
      // Chromium's own temporaries: "<name>.crdownload" and hidden
      // ".org.chromium.Chromium.*" files it moves into place.
      if (!name.empty() && name[0] != '.' && !name.ends_with(kInProgressSuffix))
        report(std::string(name), (event.mask & IN_MOVED_TO) != 0);
    }
    at = end;
  }
}

void DownloadWatch::report(const std::string& raw_name, bool moved_in) {
  if (reported_ > kMaxReports) return;
  struct stat st {};
  // Only a plain file that is still there; a link is never followed.
  if (::fstatat(dir_.get(), raw_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) return;
  // Chromium reserves a download's final name with an empty file, written
  // and closed, and later renames the finished .crdownload over it: the
  // empty file is not a download. (An empty download is still reported,
  // when it is moved into place.)
  if (!moved_in && st.st_size == 0) return;
  // A move into place and a close after it are one download.
  auto seen = std::make_pair(static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_size));
  if (auto it = reported_files_.find(raw_name); it != reported_files_.end() && it->second == seen) return;
  if (reported_ == kMaxReports) {
    ++reported_;
    if (on_capped_) on_capped_(kMaxReports);
    return;
  }
  ++reported_;
  reported_files_[raw_name] = seen;
  if (on_complete_) on_complete_(printable(raw_name), static_cast<std::uint64_t>(st.st_size));
}

}  // namespace kindling::control
