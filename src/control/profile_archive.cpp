#include "control/profile_archive.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zlib.h>

#include <cstring>
#include <memory>
#include <set>

namespace kindling::control {

namespace {

// Header (kProfileHeaderBytes, big-endian): magic "KNDLPROF", version 1,
// flags (bit 0: sealed), 2 reserved zero bytes, generation u64, size of the
// uncompressed entry list u64. Sealed, the header is the GCM's additional
// data, so neither the generation nor the size can be changed unnoticed.
constexpr std::string_view kMagic = "KNDLPROF";
constexpr std::uint8_t kVersion = 1;
constexpr std::uint8_t kFlagSealed = 1;
constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;
constexpr std::uint8_t kKindDir = 1;
constexpr std::uint8_t kKindFile = 2;

Error bad(std::string message) { return make_error("profile archive: " + std::move(message), "invalid"); }

void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}
void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}
std::uint64_t get_u64(std::string_view in, std::size_t at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(in[at + i]);
  return v;
}

std::string shown(std::string_view path) {
  std::string out;
  for (char c : path.substr(0, 128)) out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
  return out;
}

struct Header {
  bool sealed = false;
  std::uint64_t generation = 0;
  std::uint64_t inner_size = 0;
};

Result<Header> parse_header(std::string_view file, const ProfileLimits& limits) {
  if (file.size() < kProfileHeaderBytes) return bad("shorter than its header (cut off?)");
  if (file.substr(0, kMagic.size()) != kMagic) return bad("not a Kindling profile (bad magic)");
  if (static_cast<std::uint8_t>(file[8]) != kVersion)
    return bad("format version " + std::to_string(static_cast<std::uint8_t>(file[8])) + " is not supported");
  const auto flags = static_cast<std::uint8_t>(file[9]);
  if ((flags & ~kFlagSealed) != 0 || file[10] != 0 || file[11] != 0) return bad("unknown flags");
  Header h;
  h.sealed = (flags & kFlagSealed) != 0;
  h.generation = get_u64(file, 12);
  h.inner_size = get_u64(file, 20);
  // Names and framing are bounded too, so the list may exceed the data cap
  // by at most this much.
  const std::uint64_t framing = static_cast<std::uint64_t>(limits.max_entries) * (11 + limits.max_path_bytes);
  if (h.inner_size > limits.max_total_bytes + framing) return bad("declares more data than the size cap allows");
  return h;
}

std::string make_header(bool sealed, std::uint64_t generation, std::uint64_t inner_size) {
  std::string h(kMagic);
  h.push_back(static_cast<char>(kVersion));
  h.push_back(static_cast<char>(sealed ? kFlagSealed : 0));
  h.push_back('\0');
  h.push_back('\0');
  put_u64(h, generation);
  put_u64(h, inner_size);
  return h;
}

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

Result<std::string> seal(std::string_view header, std::string_view plain, const ProfileKey& key) {
  std::uint8_t nonce[kNonceBytes];
  if (RAND_bytes(nonce, sizeof nonce) != 1) return make_error("cannot get random bytes for the profile's nonce");
  CipherCtx c;
  int len = 0;
  std::string out(header);
  out.append(reinterpret_cast<const char*>(nonce), kNonceBytes);
  const std::size_t body_at = out.size();
  out.resize(body_at + plain.size() + kTagBytes);
  auto* body = reinterpret_cast<unsigned char*>(out.data() + body_at);
  if (!c.ctx || EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
      EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, key.data(), nonce) != 1 ||
      EVP_EncryptUpdate(c.ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(header.data()),
                        static_cast<int>(header.size())) != 1)
    return make_error("cannot start AES-256-GCM");
  // EVP takes int lengths; the cap keeps a profile far below 2 GiB, but
  // feed it in pieces anyway.
  std::size_t done = 0;
  while (done < plain.size()) {
    const int piece = static_cast<int>(std::min<std::size_t>(plain.size() - done, 1u << 30));
    if (EVP_EncryptUpdate(c.ctx, body + done, &len, reinterpret_cast<const unsigned char*>(plain.data() + done),
                          piece) != 1)
      return make_error("AES-256-GCM failed");
    done += static_cast<std::size_t>(len);
  }
  if (EVP_EncryptFinal_ex(c.ctx, body + done, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes, body + plain.size()) != 1)
    return make_error("AES-256-GCM failed");
  return out;
}

Result<std::string> unseal(std::string_view file, const ProfileKey& key) {
  if (file.size() < kProfileHeaderBytes + kNonceBytes + kTagBytes) return bad("sealed file is cut off");
  const std::string_view header = file.substr(0, kProfileHeaderBytes);
  const auto* nonce = reinterpret_cast<const unsigned char*>(file.data() + kProfileHeaderBytes);
  const std::string_view cipher =
      file.substr(kProfileHeaderBytes + kNonceBytes, file.size() - kProfileHeaderBytes - kNonceBytes - kTagBytes);
  std::uint8_t tag[kTagBytes];
  std::memcpy(tag, file.data() + file.size() - kTagBytes, kTagBytes);
  CipherCtx c;
  int len = 0;
  std::string plain(cipher.size(), '\0');
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  if (!c.ctx || EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
      EVP_DecryptInit_ex(c.ctx, nullptr, nullptr, key.data(), nonce) != 1 ||
      EVP_DecryptUpdate(c.ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(header.data()),
                        static_cast<int>(header.size())) != 1)
    return make_error("cannot start AES-256-GCM");
  std::size_t done = 0;
  while (done < cipher.size()) {
    const int piece = static_cast<int>(std::min<std::size_t>(cipher.size() - done, 1u << 30));
    if (EVP_DecryptUpdate(c.ctx, out + done, &len, reinterpret_cast<const unsigned char*>(cipher.data() + done),
                          piece) != 1)
      return bad("cannot decrypt");
    done += static_cast<std::size_t>(len);
  }
  if (EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes, tag) != 1 ||
      EVP_DecryptFinal_ex(c.ctx, out + done, &len) != 1)
    return bad("authentication failed: wrong key, or the file was changed or damaged");
  return plain;
}

Result<std::string> deflate_all(std::string_view in) {
  uLongf bound = compressBound(static_cast<uLong>(in.size()));
  std::string out(bound, '\0');
  if (compress2(reinterpret_cast<Bytef*>(out.data()), &bound, reinterpret_cast<const Bytef*>(in.data()),
                static_cast<uLong>(in.size()), 6) != Z_OK)
    return make_error("cannot compress the profile");
  out.resize(bound);
  return out;
}

// Inflates exactly `size` bytes: a stream that would produce more, or ends
// early, or has bytes after its end, is refused. Output never exceeds
// `size`, which the header check bounded.
Result<std::string> inflate_exact(std::string_view in, std::uint64_t size) {
  std::string out(size, '\0');
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return make_error("cannot start zlib");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(size);
  if (in.size() > 0xffffffffu || size > 0xffffffffu) {
    inflateEnd(&z);
    return bad("too large");
  }
  int rc = inflate(&z, Z_FINISH);
  const bool whole = rc == Z_STREAM_END && z.total_out == size && z.avail_in == 0;
  inflateEnd(&z);
  if (!whole) return bad("compressed data is damaged or does not match its declared size");
  return out;
}

Result<std::vector<ProfileEntry>> parse_entries(std::string_view in, const ProfileLimits& limits,
                                                std::uint64_t& total) {
  std::vector<ProfileEntry> entries;
  std::set<std::string, std::less<>> seen;
  std::size_t at = 0;
  total = 0;
  while (at < in.size()) {
    if (entries.size() >= limits.max_entries)
      return bad("more than " + std::to_string(limits.max_entries) + " entries");
    if (in.size() - at < 3) return bad("entry header cut off");
    const auto kind = static_cast<std::uint8_t>(in[at]);
    const std::size_t name_len =
        (static_cast<std::size_t>(static_cast<std::uint8_t>(in[at + 1])) << 8) | static_cast<std::uint8_t>(in[at + 2]);
    at += 3;
    if (kind != kKindDir && kind != kKindFile) return bad("unknown entry kind " + std::to_string(kind));
    if (in.size() - at < name_len) return bad("entry name cut off");
    std::string_view path = in.substr(at, name_len);
    at += name_len;
    if (auto st = check_profile_path(path, limits); !st) return bad(st.error().message);
    if (!seen.insert(std::string(path)).second) return bad("entry '" + shown(path) + "' appears twice");
    ProfileEntry e;
    e.path = std::string(path);
    e.directory = kind == kKindDir;
    if (!e.directory) {
      if (in.size() - at < 8) return bad("size of '" + shown(path) + "' cut off");
      const std::uint64_t size = get_u64(in, at);
      at += 8;
      if (size > in.size() - at) return bad("data of '" + shown(path) + "' cut off");
      total += size;
      if (total > limits.max_total_bytes) return bad("holds more than the size cap");
      e.data = std::string(in.substr(at, size));
      at += size;
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

}  // namespace

Status check_profile_path(std::string_view path, const ProfileLimits& limits) {
  if (path.empty()) return make_error("empty entry name", "invalid");
  if (path.size() > limits.max_path_bytes)
    return make_error("entry name longer than " + std::to_string(limits.max_path_bytes) + " bytes", "invalid");
  std::size_t depth = 0;
  std::size_t start = 0;
  while (true) {
    auto slash = path.find('/', start);
    std::string_view part =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty() || part == "." || part == "..")
      return make_error("entry name '" + shown(path) + "' has an empty, '.' or '..' component", "invalid");
    if (part.size() > 255)
      return make_error("entry name '" + shown(path) + "' has a component over 255 bytes", "invalid");
    for (char c : part)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        return make_error("entry name '" + shown(path) + "' has a control character", "invalid");
    if (++depth > limits.max_depth)
      return make_error("entry name '" + shown(path) + "' is deeper than " + std::to_string(limits.max_depth),
                        "invalid");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return ok_status();
}

Result<std::string> write_profile_archive(const ProfileArchive& archive, const std::optional<ProfileKey>& key,
                                          const ProfileLimits& limits) {
  if (archive.entries.size() > limits.max_entries)
    return make_error("the profile has more than " + std::to_string(limits.max_entries) + " files and folders",
                      "payload_too_large");
  std::string inner;
  std::uint64_t total = 0;
  for (const auto& e : archive.entries) {
    if (auto st = check_profile_path(e.path, limits); !st) return st.error();
    total += e.data.size();
    if (total > limits.max_total_bytes)
      return make_error(
          "the profile is larger than the size cap of " + std::to_string(limits.max_total_bytes) + " bytes",
          "payload_too_large");
    inner.push_back(static_cast<char>(e.directory ? kKindDir : kKindFile));
    put_u16(inner, static_cast<std::uint16_t>(e.path.size()));
    inner += e.path;
    if (!e.directory) {
      put_u64(inner, e.data.size());
      inner += e.data;
    }
  }
  KINDLING_TRY(compressed, deflate_all(inner));
  std::string header = make_header(key.has_value(), archive.generation, inner.size());
  if (key) return seal(header, compressed, *key);
  return header + compressed;
}

Result<ProfileArchive> peek_profile_archive(std::string_view header) {
  KINDLING_TRY(h, parse_header(header, ProfileLimits{}));
  ProfileArchive a;
  a.generation = h.generation;
  a.encrypted = h.sealed;
  return a;
}

Result<ProfileArchive> read_profile_archive(std::string_view file, const std::optional<ProfileKey>& key,
                                            const ProfileLimits& limits) {
  KINDLING_TRY(h, parse_header(file, limits));
  std::string compressed;
  if (h.sealed) {
    if (!key) return bad("the profile is encrypted and this server has no key (kindling serve --profile-key-file)");
    KINDLING_TRY(plain, unseal(file, *key));
    compressed = std::move(plain);
  } else {
    if (key) return bad("the profile is not encrypted but this server requires it (it has a key)");
    compressed = std::string(file.substr(kProfileHeaderBytes));
  }
  KINDLING_TRY(inner, inflate_exact(compressed, h.inner_size));
  ProfileArchive a;
  a.generation = h.generation;
  a.encrypted = h.sealed;
  KINDLING_TRY(entries, parse_entries(inner, limits, a.total_bytes));
  a.entries = std::move(entries);
  return a;
}

}  // namespace kindling::control
