#include "control/extension_archive.hpp"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <set>

#include <nlohmann/json.hpp>

namespace kindling::control {

namespace {

constexpr std::uint32_t kEndOfCentralDirSig = 0x06054b50;
constexpr std::uint32_t kCentralEntrySig = 0x02014b50;
constexpr std::uint32_t kLocalHeaderSig = 0x04034b50;
constexpr std::uint32_t kZip64LocatorSig = 0x07064b50;
constexpr std::size_t kEndOfCentralDirBytes = 22;
constexpr std::size_t kCentralEntryBytes = 46;
constexpr std::size_t kLocalHeaderBytes = 30;
constexpr std::size_t kMaxManifestBytes = 1 << 20;
constexpr std::size_t kMaxComponentBytes = 255;
// Archivers on macOS add resource forks under this folder; Chromium would
// refuse the extension for them ('_' names are reserved), so they are dropped.
constexpr std::string_view kMacMetadataDir = "__MACOSX/";

Error bad(std::string message) { return make_error(std::move(message), "bad_request"); }

std::uint16_t u16(std::string_view d, std::size_t at) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(d[at]) | static_cast<unsigned char>(d[at + 1]) << 8);
}
std::uint32_t u32(std::string_view d, std::size_t at) {
  return static_cast<std::uint32_t>(u16(d, at)) | static_cast<std::uint32_t>(u16(d, at + 2)) << 16;
}

// A name as it may appear in a message: bounded and printable.
std::string shown(std::string_view name) {
  std::string out;
  for (char c : name.substr(0, 128)) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  if (name.size() > 128) out += "...";
  return out;
}

// Checks one entry name; a directory entry ends with '/', which is removed.
Result<std::string> checked_name(std::string_view raw, bool& is_dir, const ExtensionArchiveLimits& limits) {
  if (raw.empty()) return bad("zip entry with an empty name");
  if (raw.size() > limits.max_path_bytes)
    return bad("zip entry name longer than " + std::to_string(limits.max_path_bytes) + " bytes: '" + shown(raw) + "'");
  for (char c : raw) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return bad("zip entry name with a control character: '" + shown(raw) + "'");
    if (c == '\\') return bad("zip entry name with a backslash: '" + shown(raw) + "'");
  }
  if (raw.front() == '/') return bad("zip entry '" + shown(raw) + "' is an absolute path");
  is_dir = raw.back() == '/';
  std::string_view path = is_dir ? raw.substr(0, raw.size() - 1) : raw;
  std::size_t depth = 0;
  for (std::size_t pos = 0; pos <= path.size();) {
    auto slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    auto part = path.substr(pos, slash - pos);
    if (part == "..") return bad("zip entry '" + shown(raw) + "' leaves the extension's folder ('..')");
    if (part.empty() || part == ".") return bad("zip entry '" + shown(raw) + "' has an empty or '.' path component");
    if (part.size() > kMaxComponentBytes) return bad("zip entry '" + shown(raw) + "' has a component over 255 bytes");
    if (++depth > limits.max_depth)
      return bad("zip entry '" + shown(raw) + "' is nested deeper than " + std::to_string(limits.max_depth));
    pos = slash + 1;
  }
  return std::string(path);
}

struct CentralEntry {
  std::string name;  // checked, without a directory's trailing '/'
  bool is_dir = false;
  std::uint16_t method = 0;
  std::uint32_t crc = 0;
  std::uint64_t compressed = 0;
  std::uint64_t size = 0;
  std::uint64_t local_offset = 0;
  std::uint64_t data_offset = 0;  // set from the local header
};

Result<std::string> inflate_entry(std::string_view zip, const CentralEntry& e) {
  std::string out;
  out.resize(e.size);
  std::string_view in = zip.substr(e.data_offset, e.compressed);
  if (e.method == 0) {
    out.assign(in);
  } else {
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return make_error("cannot start zlib");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    // The output buffer is exactly the declared size: a stream that would
    // produce more stops with Z_BUF_ERROR/Z_OK instead of growing anything.
    int rc = inflate(&z, Z_FINISH);
    const bool whole = rc == Z_STREAM_END && z.total_out == e.size && z.avail_in == 0;
    inflateEnd(&z);
    if (!whole)
      return bad("zip entry '" + shown(e.name) + "' does not inflate to its declared size (" +
                 std::to_string(e.size) + " bytes): corrupt or a zip bomb");
  }
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(out.size()));
  if (static_cast<std::uint32_t>(crc) != e.crc) return bad("zip entry '" + shown(e.name) + "' fails its CRC-32 check");
  return out;
}

// The end-of-central-directory record: the last one whose comment runs
// exactly to the end of the data, so a comment cannot hide a second one.
Result<std::size_t> find_end_record(std::string_view zip) {
  if (zip.size() < kEndOfCentralDirBytes) return bad("the body is not a zip archive (too short)");
  std::size_t lowest = zip.size() > kEndOfCentralDirBytes + 0xffff ? zip.size() - kEndOfCentralDirBytes - 0xffff : 0;
  for (std::size_t at = zip.size() - kEndOfCentralDirBytes;; --at) {
    if (u32(zip, at) == kEndOfCentralDirSig && at + kEndOfCentralDirBytes + u16(zip, at + 20) == zip.size())
      return at;
    if (at == lowest) break;
  }
  return bad("the body is not a zip archive (no end of central directory record)");
}

Result<std::vector<CentralEntry>> read_central_directory(std::string_view zip, const ExtensionArchiveLimits& limits) {
  KINDLING_TRY(end, find_end_record(zip));
  if (end >= 20 && u32(zip, end - 20) == kZip64LocatorSig) return bad("zip64 archives are not supported");
  const std::uint16_t disk = u16(zip, end + 4), cd_disk = u16(zip, end + 6);
  const std::uint16_t here = u16(zip, end + 8), count = u16(zip, end + 10);
  const std::uint32_t cd_size = u32(zip, end + 12), cd_offset = u32(zip, end + 16);
  if (here == 0xffff || count == 0xffff || cd_size == 0xffffffffu || cd_offset == 0xffffffffu)
    return bad("zip64 archives are not supported");
  if (disk != 0 || cd_disk != 0 || here != count) return bad("multi-part zip archives are not supported");
  if (count == 0) return bad("the zip archive is empty");
  if (count > limits.max_entries)
    return bad("the zip archive has " + std::to_string(count) + " entries; at most " +
               std::to_string(limits.max_entries) + " are allowed");
  if (std::uint64_t{cd_offset} + cd_size > end) return bad("the zip's central directory lies outside the archive");

  std::vector<CentralEntry> entries;
  entries.reserve(count);
  std::uint64_t total = 0;
  std::size_t at = cd_offset;
  const std::size_t cd_end = std::size_t{cd_offset} + cd_size;
  for (std::size_t i = 0; i < count; ++i) {
    if (at + kCentralEntryBytes > cd_end || u32(zip, at) != kCentralEntrySig)
      return bad("the zip's central directory is corrupt (entry " + std::to_string(i + 1) + ")");
    const std::size_t name_len = u16(zip, at + 28), extra_len = u16(zip, at + 30), comment_len = u16(zip, at + 32);
    const std::size_t next = at + kCentralEntryBytes + name_len + extra_len + comment_len;
    if (next > cd_end) return bad("the zip's central directory is corrupt (entry " + std::to_string(i + 1) + ")");
    std::string_view raw = zip.substr(at + kCentralEntryBytes, name_len);
    CentralEntry e;
    KINDLING_TRY(name, checked_name(raw, e.is_dir, limits));
    e.name = std::move(name);
    const std::uint16_t flags = u16(zip, at + 8);
    e.method = u16(zip, at + 10);
    e.crc = u32(zip, at + 16);
    e.compressed = u32(zip, at + 20);
    e.size = u32(zip, at + 24);
    e.local_offset = u32(zip, at + 42);
    const unsigned made_by_os = u16(zip, at + 4) >> 8;
    const std::uint32_t mode = u32(zip, at + 38) >> 16;
    at = next;

    if (flags & 0x0041) return bad("zip entry '" + shown(raw) + "' is encrypted");
    if (e.method != 0 && e.method != 8)
      return bad("zip entry '" + shown(raw) + "' uses compression method " + std::to_string(e.method) +
                 "; only stored (0) and deflate (8) are supported");
    // Unix archivers record the file type in the high half of the external
    // attributes: only plain files and directories may be unpacked.
    constexpr std::uint32_t kTypeMask = 0170000, kLink = 0120000, kFile = 0100000, kDir = 0040000;
    if (made_by_os == 3 && (mode & kTypeMask) == kLink) return bad("zip entry '" + shown(raw) + "' is a symbolic link");
    if (made_by_os == 3 && (mode & kTypeMask) != 0 && (mode & kTypeMask) != kFile && (mode & kTypeMask) != kDir)
      return bad("zip entry '" + shown(raw) + "' is not a plain file or folder");
    if (e.is_dir && e.size != 0) return bad("zip folder entry '" + shown(raw) + "' has contents");
    if (e.method == 0 && e.compressed != e.size)
      return bad("stored zip entry '" + shown(raw) + "' has different compressed and plain sizes");
    if (e.size > limits.max_file_bytes)
      return bad("zip entry '" + shown(raw) + "' is " + std::to_string(e.size) + " bytes uncompressed; at most " +
                 std::to_string(limits.max_file_bytes) + " per file");
    if (e.size > limits.ratio_floor_bytes && e.size > e.compressed * limits.max_ratio)
      return bad("zip entry '" + shown(raw) + "' inflates " + std::to_string(e.size) + " bytes from " +
                 std::to_string(e.compressed) + ": over the " + std::to_string(limits.max_ratio) +
                 ":1 ratio allowed (a zip bomb?)");
    total += e.size;
    if (total > limits.max_total_bytes)
      return bad("the zip archive inflates to more than " + std::to_string(limits.max_total_bytes) +
                 " bytes (a zip bomb?)");
    if (std::string_view(raw).substr(0, kMacMetadataDir.size()) == kMacMetadataDir) continue;
    entries.push_back(std::move(e));
  }
  if (at != cd_end) return bad("the zip's central directory has trailing bytes");

  // Each entry's local header must agree with the central directory, and no
  // two entries' data may overlap (overlapping entries are how a small zip
  // inflates to gigabytes without a high ratio per entry).
  std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
  for (auto& e : entries) {
    const std::uint64_t lh = e.local_offset;
    if (lh + kLocalHeaderBytes > cd_offset || u32(zip, lh) != kLocalHeaderSig)
      return bad("zip entry '" + shown(e.name) + "' has no local header where the central directory says");
    const std::size_t name_len = u16(zip, lh + 26), extra_len = u16(zip, lh + 28);
    e.data_offset = lh + kLocalHeaderBytes + name_len + extra_len;
    if (e.data_offset + e.compressed > cd_offset)
      return bad("zip entry '" + shown(e.name) + "' runs past the end of the archive's data");
    std::string_view local_name = zip.substr(lh + kLocalHeaderBytes, name_len);
    if (local_name != (e.is_dir ? e.name + "/" : e.name))
      return bad("zip entry '" + shown(e.name) + "' has a different name in its local header");
    if (u16(zip, lh + 8) != e.method) return bad("zip entry '" + shown(e.name) + "' has inconsistent headers");
    spans.emplace_back(lh, e.data_offset + e.compressed);
  }
  std::sort(spans.begin(), spans.end());
  for (std::size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second) return bad("zip entries overlap (a zip bomb?)");
  return entries;
}

bool is_version_string(std::string_view v) {
  if (v.empty() || v.size() > 64) return false;
  int parts = 0;
  for (std::size_t pos = 0; pos <= v.size();) {
    auto dot = v.find('.', pos);
    if (dot == std::string_view::npos) dot = v.size();
    auto part = v.substr(pos, dot - pos);
    if (part.empty() || part.size() > 5 || ++parts > 4) return false;
    if (part.size() > 1 && part[0] == '0') return false;
    unsigned value = 0;
    for (char c : part) {
      if (c < '0' || c > '9') return false;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535) return false;
    pos = dot + 1;
  }
  return true;
}

Status check_text(const std::string& text, const char* field, std::size_t max) {
  if (text.size() > max) return bad(std::string("manifest.json's '") + field + "' is longer than " +
                                    std::to_string(max) + " bytes");
  for (char c : text)
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t')
      return bad(std::string("manifest.json's '") + field + "' has a control character");
  return ok_status();
}

}  // namespace

Result<ExtensionManifest> parse_extension_manifest(std::string_view text) {
  if (text.size() > kMaxManifestBytes) return bad("manifest.json is larger than 1 MiB");
  // Chromium reads manifests with comments allowed; so does this.
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/true);
  if (j.is_discarded()) return bad("manifest.json is not valid JSON");
  if (!j.is_object()) return bad("manifest.json must be a JSON object");
  ExtensionManifest m;
  auto mv = j.find("manifest_version");
  if (mv == j.end() || !mv->is_number_integer() || (mv->get<std::int64_t>() != 2 && mv->get<std::int64_t>() != 3))
    return bad("manifest.json's 'manifest_version' must be 3");
  // Chromium 156 refuses version 2 at load ("uses an unsupported manifest
  // version", with or without --disable-features=ExtensionManifestV2*):
  // refused here, where the uploader hears why, not in every session's log.
  if (mv->get<std::int64_t>() == 2)
    return bad("manifest.json has 'manifest_version' 2, which Chromium no longer loads; port it to version 3");
  m.manifest_version = static_cast<int>(mv->get<std::int64_t>());
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get_ref<const std::string&>().empty())
    return bad("manifest.json needs a non-empty string 'name'");
  m.name = name->get<std::string>();
  if (auto st = check_text(m.name, "name", 256); !st) return st.error();
  auto version = j.find("version");
  if (version == j.end() || !version->is_string() || !is_version_string(version->get_ref<const std::string&>()))
    return bad("manifest.json's 'version' must be 1 to 4 dot-separated integers 0..65535 (\"1.0.2\")");
  m.version = version->get<std::string>();
  if (auto d = j.find("description"); d != j.end()) {
    if (!d->is_string()) return bad("manifest.json's 'description' must be a string");
    m.description = d->get<std::string>();
    if (auto st = check_text(m.description, "description", 4096); !st) return st.error();
  }
  return m;
}

Result<ExtensionArchive> read_extension_archive(std::string_view zip, const ExtensionArchiveLimits& limits) {
  KINDLING_TRY(entries, read_central_directory(zip, limits));

  // One name, one thing: no duplicates, and no file where another entry
  // needs a folder ("a" and "a/b").
  std::set<std::string, std::less<>> files, dirs;
  for (const auto& e : entries) {
    auto& own = e.is_dir ? dirs : files;
    if (files.count(e.name) || (!e.is_dir && dirs.count(e.name)) || (!own.insert(e.name).second))
      return bad("zip entry '" + shown(e.name) + "' appears twice");
  }
  for (const auto& f : files) {
    for (auto slash = f.find('/'); slash != std::string::npos; slash = f.find('/', slash + 1)) {
      if (files.count(std::string_view(f).substr(0, slash)))
        return bad("zip entry '" + shown(f.substr(0, slash)) + "' is a file and a folder");
      dirs.insert(f.substr(0, slash));
    }
  }
  for (const auto& d : dirs)
    if (files.count(d)) return bad("zip entry '" + shown(d) + "' is a file and a folder");

  // manifest.json at the root, or everything inside one folder that has it.
  std::string prefix;
  if (!files.count("manifest.json")) {
    std::string top;
    bool one_folder = true;
    for (const auto& e : entries) {
      auto first = e.name.substr(0, e.name.find('/'));
      if (top.empty()) top = first;
      if (first != top || (!e.is_dir && e.name.find('/') == std::string::npos)) one_folder = false;
    }
    if (!one_folder || !files.count(top + "/manifest.json"))
      return bad("the zip has no manifest.json at its root or inside a single top-level folder");
    prefix = top + "/";
  }

  ExtensionArchive archive;
  for (const auto& e : entries) {
    if (e.name.size() <= prefix.size() && e.is_dir) continue;  // the top-level folder itself
    std::string path = e.name.substr(prefix.size());
    auto top = path.substr(0, path.find('/'));
    // Chromium refuses an extension with such a name at its root
    // ("Filenames starting with "_" are reserved for use by the system").
    if (top.starts_with('_') && top != "_locales")
      return bad("'" + shown(top) + "' at the extension's root: names starting with '_' are reserved by Chromium "
                 "(only _locales is allowed)");
    if (e.is_dir) {
      archive.empty_dirs.push_back(std::move(path));
      continue;
    }
    KINDLING_TRY(data, inflate_entry(zip, e));
    archive.total_bytes += data.size();
    archive.files.push_back({std::move(path), std::move(data)});
  }
  // Only folders with nothing in them need their own entry.
  std::erase_if(archive.empty_dirs, [&](const std::string& d) {
    return std::any_of(archive.files.begin(), archive.files.end(),
                       [&](const ArchiveFile& f) { return f.path.starts_with(d + "/"); });
  });
  const auto manifest = std::find_if(archive.files.begin(), archive.files.end(),
                                     [](const ArchiveFile& f) { return f.path == "manifest.json"; });
  KINDLING_TRY(parsed, parse_extension_manifest(manifest->data));
  archive.manifest = std::move(parsed);
  return archive;
}

}  // namespace kindling::control
