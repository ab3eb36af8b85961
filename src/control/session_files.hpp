// A session's files, seen from the host: what its pages downloaded (the
// downloads area the agent points Chromium at) and what clients uploaded for
// file inputs. Everything here reads a directory the machine can write, so
// names, types and sizes are checked and nothing follows a link.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kindling::control {

// Where they live inside a machine.
inline constexpr const char* kDownloadsDir = "/home/browser/downloads";
inline constexpr const char* kUploadsDir = "/home/browser/uploads";

struct SessionFile {
  std::string name;
  std::uint64_t size = 0;
  std::string sha256;     // of a complete file; empty while in progress
  bool complete = false;  // Chromium still writing it: "<name>.crdownload"
};

// A name a client may use: one path component, no control characters,
// at most 255 bytes.
Status check_file_name(std::string_view name);

// The sha256 of files already hashed, so a listing hashes only what changed.
// Keyed by inode, size, mtime and ctime: the machine can set a file's mtime
// back after rewriting it, but not its ctime.
class DigestCache {
 public:
  struct Key {
    std::uint64_t inode = 0, size = 0;
    std::int64_t mtime_ns = 0, ctime_ns = 0;
    bool operator==(const Key&) const = default;
  };
  const std::string* find(const std::string& name, const Key& key) const;
  void put(const std::string& name, const Key& key, std::string digest);
  // Forgets the names not in `kept` (the files the last listing saw).
  void keep_only(const std::vector<std::string>& kept);
  std::size_t size() const { return entries_.size(); }

 private:
  std::map<std::string, std::pair<Key, std::string>> entries_;
};

// The plain files in `dir` (at most `max_files`), sorted by name; links,
// directories and other types are skipped. With a cache, only new or
// changed files are read.
Result<std::vector<SessionFile>> list_session_files(int dir, std::size_t max_files = 1000,
                                                    DigestCache* cache = nullptr);

// Opens a complete plain file of `dir` for reading; its size in `size`.
Result<UniqueFd> open_session_file(int dir, const std::string& name, std::uint64_t& size);

// Writes `data` to a new file already opened for writing (`fd`); returns it
// as listed.
Result<SessionFile> write_session_file(int fd, const std::string& name, std::string_view data);

}  // namespace kindling::control
