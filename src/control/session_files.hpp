// A session's files, seen from the host: what its pages downloaded (the
// downloads area the agent points Chromium at) and what clients uploaded for
// file inputs. Everything here reads a directory the machine can write, so
// names, types and sizes are checked and nothing follows a link.
#pragma once

#include <cstdint>
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

// The plain files in `dir` (at most `max_files`), sorted by name; links,
// directories and other types are skipped.
Result<std::vector<SessionFile>> list_session_files(int dir, std::size_t max_files = 1000);

// Opens a complete plain file of `dir` for reading; its size in `size`.
Result<UniqueFd> open_session_file(int dir, const std::string& name, std::uint64_t& size);

// Writes `data` to a new file already opened for writing (`fd`); returns it
// as listed.
Result<SessionFile> write_session_file(int fd, const std::string& name, std::string_view data);

}  // namespace kindling::control
