// Tells a session when a download completes: an inotify watch on the
// machine's downloads area (the directory itself, opened beforehand without
// following links), reporting each file Chromium finishes, by name and size.
// The machine controls the names and how many files appear, so names are
// made printable and bounded, and the number of reports is capped.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kindling::control {

class DownloadWatch {
 public:
  // `name` is printable (bytes below 0x20 and 0x7f become '?'), at most 255 bytes.
  using OnComplete = std::function<void(const std::string& name, std::uint64_t size)>;
  using OnCapped = std::function<void(int reported)>;

  static constexpr int kMaxReports = 64;

  // Watches the directory open at `dir` (kept open by the watch).
  static Result<std::unique_ptr<DownloadWatch>> start(boost::asio::io_context& io, UniqueFd dir,
                                                      OnComplete on_complete, OnCapped on_capped);
  ~DownloadWatch();
  DownloadWatch(const DownloadWatch&) = delete;
  DownloadWatch& operator=(const DownloadWatch&) = delete;

 private:
  DownloadWatch(boost::asio::io_context& io, UniqueFd dir, OnComplete on_complete, OnCapped on_capped);
  void read_more();
  void handle(std::size_t bytes);
  // `moved_in`: the file was renamed into the folder (IN_MOVED_TO), not
  // written there and closed.
  void report(const std::string& raw_name, bool moved_in);

  UniqueFd dir_;
  boost::asio::posix::stream_descriptor inotify_;
  OnComplete on_complete_;
  OnCapped on_capped_;
  int reported_ = 0;
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> reported_files_;  // name -> inode, size
  alignas(8) std::array<char, 16 * 1024> buffer_{};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kindling::control
