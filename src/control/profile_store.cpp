#include "control/profile_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/clock.hpp"
#include "common/secrets.hpp"
#include "common/unique_fd.hpp"
#include "control/store_folder.hpp"

namespace kindling::control {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSeedPrefix = ".seed-";
constexpr const char* kState = "state.kprof";
constexpr const char* kStateTemp = "state.kprof.tmp";
constexpr const char* kMeta = "meta.json";
constexpr std::size_t kMaxMetaBytes = 16 * 1024;

std::string errno_text() { return std::strerror(errno); }

Status write_all(int fd, std::string_view data, const std::string& what) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error("cannot write " + what + ": " + errno_text());
    done += static_cast<std::size_t>(n);
  }
  return ok_status();
}

// Writes `path` (which must not exist) and syncs it.
Status write_synced(const std::string& path, std::string_view data, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd.valid()) return make_error("cannot create " + path + ": " + errno_text());
  if (auto st = write_all(fd.get(), data, path); !st) return st;
  if (::fdatasync(fd.get()) != 0) return make_error("cannot sync " + path + ": " + errno_text());
  return ok_status();
}

Status sync_dir(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) return make_error("cannot sync " + path + ": " + errno_text());
  return ok_status();
}

Result<std::string> read_bounded(const std::string& path, std::uint64_t max) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return make_error("cannot read " + path + ": " + errno_text(), errno == ENOENT ? "not_found" : "");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return make_error(path + " is not a file");
  if (static_cast<std::uint64_t>(st.st_size) > max) return make_error(path + " is larger than the size cap", "invalid");
  std::string data(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::read(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error("cannot read " + path + ": " + errno_text());
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  data.resize(done);
  return data;
}

std::uint64_t save_delay_ms() {
  const char* v = std::getenv("KINDLING_TEST_PROFILE_SAVE_DELAY_MS");
  if (!v) return 0;
  char* end = nullptr;
  unsigned long long ms = std::strtoull(v, &end, 10);
  return end && *end == '\0' ? std::min<unsigned long long>(ms, 600'000) : 0;
}

}  // namespace

nlohmann::json to_api_json(const ProfileInfo& p) {
  return {{"id", p.id},
          {"name", p.name},
          {"createdAt", iso8601_utc(p.created_at_ms)},
          {"savedAt", iso8601_utc(p.saved_at_ms)},
          {"sizeBytes", p.size_bytes},
          {"generation", p.generation},
          {"encrypted", p.encrypted}};
}

Result<ProfileKey> read_profile_key_file(const std::string& path) {
  auto text = read_bounded(path, 256);
  if (!text) return make_error("cannot read the profile key file: " + text.error().message);
  std::string data = std::move(text.value());
  ProfileKey key{};
  if (data.size() == key.size()) {
    std::memcpy(key.data(), data.data(), key.size());
    return key;
  }
  while (!data.empty() && (data.back() == '\n' || data.back() == '\r')) data.pop_back();
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (data.size() == 2 * key.size()) {
    bool ok = true;
    for (std::size_t i = 0; i < key.size() && ok; ++i) {
      int hi = nibble(data[2 * i]), lo = nibble(data[2 * i + 1]);
      ok = hi >= 0 && lo >= 0;
      key[i] = static_cast<std::uint8_t>((hi << 4) | lo);
    }
    if (ok) return key;
  }
  return make_error("the profile key file " + path +
                    " must hold a 32-byte key: 32 raw bytes, or 64 hex digits (e.g. `openssl rand -hex 32`)");
}

bool ProfileStore::valid_id(std::string_view id) {
  return is_store_id(id);
}

Result<ProfileStore> ProfileStore::open(std::string dir, std::optional<ProfileKey> key, ProfileLimits limits) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error("cannot create " + dir + ": " + ec.message());
  // Profiles hold cookies: nobody else on the host may enter this folder.
  // (A machine's sandbox reopens its seed while it is still host root, as
  // for extensions: docs/sandbox.md.)
  if (::chmod(dir.c_str(), 0700) != 0) return make_error("cannot chmod " + dir + ": " + errno_text());
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    auto name = entry.path().filename().string();
    if (is_store_leftover(name) || name.starts_with(kSeedPrefix)) {
      fs::remove_all(entry.path(), ec);
    } else if (valid_id(name)) {
      // A save cut short (crash, kill -9): state.kprof is still the previous version.
      fs::remove(entry.path() / kStateTemp, ec);
    }
  }
  if (ec) return make_error("cannot clean " + dir + ": " + ec.message());
  return ProfileStore(std::move(dir), key, limits);
}

Result<ProfileInfo> ProfileStore::create(const std::string& name) {
  if (name.size() > kMaxNameBytes)
    return make_error("'name' must be at most " + std::to_string(kMaxNameBytes) + " bytes", "bad_request");
  for (char c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return make_error("'name' must not contain control characters", "bad_request");
  KINDLING_TRY(existing, list());
  if (existing.size() >= kMaxProfiles)
    return make_error("the server already stores " + std::to_string(kMaxProfiles) + " profiles; delete one first",
                      "conflict");
  ProfileInfo info;
  info.id = random_hex(12);
  info.name = name;
  info.created_at_ms = unix_millis();
  const std::string temp = dir_ + "/" + std::string(kStoreTempPrefix) + info.id;
  if (::mkdir(temp.c_str(), 0700) != 0) return make_error("cannot create " + temp + ": " + errno_text());
  auto cleanup = [&] {
    std::error_code ec;
    fs::remove_all(temp, ec);
  };
  nlohmann::json meta = {{"id", info.id}, {"name", info.name}, {"createdAtMs", info.created_at_ms}};
  auto empty = write_profile_archive({}, key_, limits_);
  Status written = empty ? write_synced(temp + "/" + kMeta, meta.dump(), 0600) : Status(empty.error());
  if (written) written = write_synced(temp + "/" + kState, *empty, 0600);
  if (written) written = sync_dir(temp);
  if (!written) {
    cleanup();
    return written.error();
  }
  const std::string final_dir = dir_ + "/" + info.id;
  if (::rename(temp.c_str(), final_dir.c_str()) != 0) {
    cleanup();
    return make_error("cannot move " + temp + " to " + final_dir + ": " + errno_text());
  }
  if (auto st = sync_dir(dir_); !st) return st.error();
  return get(info.id);
}

Result<ProfileInfo> ProfileStore::get(const std::string& id) const {
  if (!valid_id(id)) return make_error("no profile with id '" + id.substr(0, 64) + "'", "not_found");
  const std::string root = dir_ + "/" + id;
  struct stat st {};
  if (::lstat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return make_error("no profile with id '" + id + "'", "not_found");
  KINDLING_TRY(meta_text, read_bounded(root + "/" + kMeta, kMaxMetaBytes));
  auto meta = nlohmann::json::parse(meta_text, nullptr, false);
  ProfileInfo info;
  info.id = id;
  if (!meta.is_object() || !meta.contains("createdAtMs") || !meta["createdAtMs"].is_number_integer())
    return make_error("profile " + id + ": meta.json is damaged");
  info.created_at_ms = meta["createdAtMs"].get<std::int64_t>();
  if (auto n = meta.find("name"); n != meta.end() && n->is_string()) info.name = n->get<std::string>();
  // Only the header: a listing must not read (or decrypt) every profile.
  const std::string state = root + "/" + kState;
  UniqueFd fd(::open(state.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) return make_error("profile " + id + ": cannot read " + kState);
  char header[kProfileHeaderBytes];
  if (::pread(fd.get(), header, sizeof header, 0) != static_cast<ssize_t>(sizeof header))
    return make_error("profile " + id + ": " + kState + " is cut off");
  KINDLING_TRY(peek, peek_profile_archive(std::string_view(header, sizeof header)));
  info.generation = peek.generation;
  info.encrypted = peek.encrypted;
  info.size_bytes = static_cast<std::uint64_t>(st.st_size);
  info.saved_at_ms = info.generation == 0
                         ? info.created_at_ms
                         : static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
  return info;
}

Result<std::vector<ProfileInfo>> ProfileStore::list() const {
  std::vector<ProfileInfo> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    auto name = entry.path().filename().string();
    if (!valid_id(name)) continue;
    KINDLING_TRY(info, get(name));
    out.push_back(std::move(info));
  }
  if (ec) return make_error("cannot list " + dir_ + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const ProfileInfo& a, const ProfileInfo& b) {
    return a.created_at_ms != b.created_at_ms ? a.created_at_ms > b.created_at_ms : a.id < b.id;
  });
  return out;
}

Status ProfileStore::remove(const std::string& id) {
  KINDLING_TRY(found, get(id));
  (void)found;
  return remove_store_entry(dir_, id, "profile");
}

Result<std::string> ProfileStore::read_state(const std::string& id) const {
  KINDLING_TRY(info, get(id));
  (void)info;
  // The compressed file cannot sensibly exceed the cap plus its framing.
  return read_bounded(dir_ + "/" + id + "/" + kState, limits_.max_total_bytes + (64ull << 20));
}

Result<std::string> ProfileStore::make_seed(const std::string& id, const std::string& session_id) const {
  KINDLING_TRY(file, read_state(id));
  auto archive = read_profile_archive(file, key_, limits_);
  if (!archive) return make_error("profile " + id + " cannot be opened: " + archive.error().message, "invalid");
  const std::string seed = dir_ + "/" + kSeedPrefix + session_id;
  if (::mkdir(seed.c_str(), 0755) != 0) return make_error("cannot create " + seed + ": " + errno_text());
  UniqueFd root(::open(seed.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid() || ::fchmod(root.get(), 0755) != 0) return make_error("cannot open " + seed + ": " + errno_text());
  auto fail = [&](Error e) -> Result<std::string> {
    remove_seed(session_id);
    return e;
  };
  // Names were validated by the reader (no "..", no empty or absolute
  // component) and everything under `seed` is made here, so each one stays
  // inside; *at calls with O_NOFOLLOW all the same.
  for (const auto& e : archive->entries) {
    std::string parent_path;
    std::string leaf = e.path;
    if (auto slash = e.path.rfind('/'); slash != std::string::npos) {
      parent_path = e.path.substr(0, slash);
      leaf = e.path.substr(slash + 1);
    }
    UniqueFd parent(::dup(root.get()));
    std::size_t start = 0;
    while (!parent_path.empty() && start <= parent_path.size()) {
      auto slash = parent_path.find('/', start);
      if (slash == std::string::npos) slash = parent_path.size();
      const std::string part = parent_path.substr(start, slash - start);
      if (::mkdirat(parent.get(), part.c_str(), 0755) != 0 && errno != EEXIST)
        return fail(make_error("cannot create " + seed + "/" + e.path + ": " + errno_text()));
      UniqueFd next(::openat(parent.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next.valid()) return fail(make_error("cannot open " + seed + "/" + e.path + ": " + errno_text()));
      ::fchmod(next.get(), 0755);
      parent = std::move(next);
      start = slash + 1;
    }
    if (e.directory) {
      if (::mkdirat(parent.get(), leaf.c_str(), 0755) != 0 && errno != EEXIST)
        return fail(make_error("cannot create " + seed + "/" + e.path + ": " + errno_text()));
      UniqueFd d(::openat(parent.get(), leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (d.valid()) ::fchmod(d.get(), 0755);
      continue;
    }
    UniqueFd f(::openat(parent.get(), leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!f.valid()) return fail(make_error("cannot create " + seed + "/" + e.path + ": " + errno_text()));
    if (auto st = write_all(f.get(), e.data, seed + "/" + e.path); !st) return fail(st.error());
    ::fchmod(f.get(), 0644);
  }
  return seed;
}

void ProfileStore::remove_seed(const std::string& session_id) const {
  std::error_code ec;
  fs::remove_all(dir_ + "/" + kSeedPrefix + session_id, ec);
}

Result<ProfileInfo> ProfileStore::save(const std::string& id, std::vector<ProfileEntry> entries,
                                       std::uint64_t generation) const {
  if (!valid_id(id)) return make_error("no profile with id '" + id.substr(0, 64) + "'", "not_found");
  ProfileArchive archive;
  archive.generation = generation;
  archive.entries = std::move(entries);
  KINDLING_TRY(file, write_profile_archive(archive, key_, limits_));
  const std::string root = dir_ + "/" + id;
  const std::string temp = root + "/" + kStateTemp;
  ::unlink(temp.c_str());
  if (auto st = write_synced(temp, file, 0600); !st) {
    ::unlink(temp.c_str());
    return st.error();
  }
  if (auto delay = save_delay_ms()) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  if (::rename(temp.c_str(), (root + "/" + kState).c_str()) != 0) {
    ::unlink(temp.c_str());
    return make_error("cannot replace " + root + "/" + kState + ": " + errno_text());
  }
  if (auto st = sync_dir(root); !st) return st.error();
  return get(id);
}

}  // namespace kindling::control
