// The initramfs archive format the kernel unpacks: cpio "newc" (070701),
// written from memory so the build needs no cpio tool and the result does
// not depend on the host's file owners or times. A reader lists an archive
// back, for tests and `kindling image check`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace kindling::image {

struct CpioEntry {
  enum class Kind { kDirectory, kFile, kSymlink, kCharDevice };
  Kind kind = Kind::kFile;
  std::string name;   // relative, no leading slash: "init", "lib/modules/x.ko"
  std::uint32_t mode = 0644;  // permission bits only
  std::string data;   // file bytes, or the symlink's target
  std::uint32_t rdev_major = 0, rdev_minor = 0;
};

class CpioArchive {
 public:
  void add_directory(const std::string& name, std::uint32_t mode = 0755);
  void add_file(const std::string& name, std::string bytes, std::uint32_t mode = 0644);
  void add_symlink(const std::string& name, const std::string& target);
  void add_char_device(const std::string& name, std::uint32_t major, std::uint32_t minor, std::uint32_t mode = 0600);
  // Every entry with uid/gid 0 and the given mtime, then the TRAILER!!! entry.
  std::string bytes(std::uint32_t mtime) const;

 private:
  std::vector<CpioEntry> entries_;
};

// The entries of a newc archive (uncompressed), in order; errors on a bad
// magic, a truncated header or data past the end.
Result<std::vector<CpioEntry>> read_cpio_newc(const std::string& bytes);

}  // namespace kindling::image
