// Writes zip archives byte by byte for tests, including the malformed and
// hostile ones an archiver would never produce.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kindling::test {

struct ZipEntry {
  std::string name;
  std::string data;
  std::uint16_t method = 8;  // 0 stored, 8 deflate
  std::uint16_t made_by_os = 3;  // unix
  std::uint32_t mode = 0100644;
  std::uint16_t flags = 0;
  // Lies a hostile archive may tell in its central directory.
  std::optional<std::uint32_t> declared_size;
  std::optional<std::uint32_t> declared_crc;
  std::optional<std::uint32_t> local_offset;  // else where its local header was written
  bool write_local = true;  // false: central entry only (points elsewhere)
  std::string raw_payload;  // if set (with method 0), written as the data instead of `data`
};

inline std::string deflate_raw(const std::string& in) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

inline void put16(std::string& s, std::uint32_t v) {
  s.push_back(static_cast<char>(v & 0xff));
  s.push_back(static_cast<char>((v >> 8) & 0xff));
}
inline void put32(std::string& s, std::uint32_t v) {
  put16(s, v & 0xffff);
  put16(s, v >> 16);
}

inline std::string local_header(const std::string& name, std::uint16_t method, std::uint32_t crc,
                                std::uint32_t csize, std::uint32_t usize, std::uint16_t flags = 0) {
  std::string h;
  put32(h, 0x04034b50);
  put16(h, 20);
  put16(h, flags);
  put16(h, method);
  put16(h, 0);
  put16(h, 0);
  put32(h, crc);
  put32(h, csize);
  put32(h, usize);
  put16(h, static_cast<std::uint32_t>(name.size()));
  put16(h, 0);
  return h + name;
}

inline std::uint32_t crc_of(const std::string& data) {
  return static_cast<std::uint32_t>(
      crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

inline std::string build_zip(const std::vector<ZipEntry>& entries, const std::string& comment = "") {
  std::string out, central;
  for (const auto& e : entries) {
    std::string payload = !e.raw_payload.empty() ? e.raw_payload : e.method == 8 ? deflate_raw(e.data) : e.data;
    std::uint32_t crc = e.declared_crc.value_or(crc_of(e.data));
    std::uint32_t usize = e.declared_size.value_or(static_cast<std::uint32_t>(e.data.size()));
    std::uint32_t offset = e.local_offset.value_or(static_cast<std::uint32_t>(out.size()));
    if (e.write_local) out += local_header(e.name, e.method, crc, static_cast<std::uint32_t>(payload.size()), usize,
                                           e.flags) + payload;
    put32(central, 0x02014b50);
    put16(central, static_cast<std::uint32_t>(e.made_by_os) << 8 | 20);
    put16(central, 20);
    put16(central, e.flags);
    put16(central, e.method);
    put16(central, 0);
    put16(central, 0);
    put32(central, crc);
    put32(central, static_cast<std::uint32_t>(payload.size()));
    put32(central, usize);
    put16(central, static_cast<std::uint32_t>(e.name.size()));
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put32(central, e.mode << 16);
    put32(central, offset);
    central += e.name;
  }
  std::uint32_t cd_offset = static_cast<std::uint32_t>(out.size());
  out += central;
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, static_cast<std::uint32_t>(entries.size()));
  put16(out, static_cast<std::uint32_t>(entries.size()));
  put32(out, static_cast<std::uint32_t>(central.size()));
  put32(out, cd_offset);
  put16(out, static_cast<std::uint32_t>(comment.size()));
  return out + comment;
}

inline const char* kTestManifest =
    R"({"manifest_version": 3, "name": "Kindling test", "version": "1.0.2", "description": "marks pages",
        "content_scripts": [{"matches": ["<all_urls>"], "js": ["mark.js"], "run_at": "document_start"}]})";

}  // namespace kindling::test
