#include "image/cpio_newc.hpp"

#include <sys/stat.h>

#include <cstdio>

namespace kindling::image {
namespace {

void pad4(std::string& out) {
  while (out.size() % 4 != 0) out.push_back('\0');
}

std::uint32_t type_bits(CpioEntry::Kind k) {
  switch (k) {
    case CpioEntry::Kind::kDirectory: return S_IFDIR;
    case CpioEntry::Kind::kFile: return S_IFREG;
    case CpioEntry::Kind::kSymlink: return S_IFLNK;
    case CpioEntry::Kind::kCharDevice: return S_IFCHR;
  }
  return S_IFREG;
}

void append(std::string& out, const CpioEntry& e, std::uint32_t ino, std::uint32_t mtime) {
  char header[111];
  const std::string& name = e.name;
  std::snprintf(header, sizeof header, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino,
                type_bits(e.kind) | (e.mode & 07777), 0u, 0u, e.kind == CpioEntry::Kind::kDirectory ? 2u : 1u, mtime,
                static_cast<std::uint32_t>(e.data.size()), 0u, 0u, e.rdev_major, e.rdev_minor,
                static_cast<std::uint32_t>(name.size() + 1), 0u);
  out.append(header, 110);
  out += name;
  out.push_back('\0');
  pad4(out);
  out += e.data;
  pad4(out);
}

}  // namespace

void CpioArchive::add_directory(const std::string& name, std::uint32_t mode) {
  entries_.push_back({CpioEntry::Kind::kDirectory, name, mode, {}, 0, 0});
}
void CpioArchive::add_file(const std::string& name, std::string bytes, std::uint32_t mode) {
  entries_.push_back({CpioEntry::Kind::kFile, name, mode, std::move(bytes), 0, 0});
}
void CpioArchive::add_symlink(const std::string& name, const std::string& target) {
  entries_.push_back({CpioEntry::Kind::kSymlink, name, 0777, target, 0, 0});
}
void CpioArchive::add_char_device(const std::string& name, std::uint32_t major, std::uint32_t minor,
                                  std::uint32_t mode) {
  entries_.push_back({CpioEntry::Kind::kCharDevice, name, mode, {}, major, minor});
}

std::string CpioArchive::bytes(std::uint32_t mtime) const {
  std::string out;
  std::uint32_t ino = 1;
  for (const auto& e : entries_) append(out, e, ino++, mtime);
  append(out, CpioEntry{CpioEntry::Kind::kFile, "TRAILER!!!", 0, {}, 0, 0}, 0, 0);
  return out;
}

Result<std::vector<CpioEntry>> read_cpio_newc(const std::string& in) {
  std::vector<CpioEntry> entries;
  std::size_t at = 0;
  auto field = [&](std::size_t i) -> Result<std::uint32_t> {
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 8; ++k) {
      char c = in[at + 6 + i * 8 + k];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return make_error("cpio: bad hex digit in the header at offset " + std::to_string(at));
      v = v * 16 + static_cast<std::uint32_t>(d);
    }
    return v;
  };
  while (true) {
    if (at + 110 > in.size()) return make_error("cpio: truncated header at offset " + std::to_string(at));
    if (in.compare(at, 6, "070701") != 0) return make_error("cpio: no newc magic at offset " + std::to_string(at));
    KINDLING_TRY(mode, field(1));
    KINDLING_TRY(filesize, field(6));
    KINDLING_TRY(rmajor, field(9));
    KINDLING_TRY(rminor, field(10));
    KINDLING_TRY(namesize, field(11));
    std::size_t name_at = at + 110;
    if (namesize == 0 || name_at + namesize > in.size()) return make_error("cpio: name past the end");
    std::string name = in.substr(name_at, namesize - 1);
    std::size_t data_at = (name_at + namesize + 3) & ~std::size_t{3};
    if (data_at + filesize > in.size()) return make_error("cpio: data of " + name + " past the end");
    if (name == "TRAILER!!!") break;
    CpioEntry e;
    e.name = name;
    e.mode = mode & 07777;
    switch (mode & S_IFMT) {
      case S_IFDIR: e.kind = CpioEntry::Kind::kDirectory; break;
      case S_IFLNK: e.kind = CpioEntry::Kind::kSymlink; break;
      case S_IFCHR: e.kind = CpioEntry::Kind::kCharDevice; break;
      default: e.kind = CpioEntry::Kind::kFile;
    }
    e.data = in.substr(data_at, filesize);
    e.rdev_major = rmajor;
    e.rdev_minor = rminor;
    entries.push_back(std::move(e));
    at = (data_at + filesize + 3) & ~std::size_t{3};
  }
  return entries;
}

}  // namespace kindling::image
