#include "control/api_keys.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "common/secrets.hpp"

namespace kindling::control {

namespace {

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

Status write_key_file(const std::string& path, const std::string& key) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("cannot write " + tmp);
  std::string line = key + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return make_error("cannot write " + path);
  }
  return ok_status();
}

}  // namespace

Result<ApiKeys> ApiKeys::setup(SessionStore& store, const std::string& data_dir, const std::string& env_key,
                               Setup* how) {
  ApiKeys keys;
  Setup local;
  Setup& h = how ? *how : local;
  if (!env_key.empty()) {
    if (env_key.size() < 16) return make_error("KINDLING_API_KEY must be at least 16 characters");
    keys.hashes_.push_back(sha256_hex(env_key));
    h.from_environment = true;
    return keys;
  }
  h.key_file = data_dir + "/api-key";
  auto stored = store.api_key_hashes();
  if (!stored) return stored.error();
  std::string existing = read_first_line(h.key_file);
  if (!existing.empty()) {
    auto hash = sha256_hex(existing);
    for (auto& s : *stored)
      if (constant_time_equal(s, hash)) {
        keys.hashes_ = *stored;
        return keys;
      }
  }
  // No usable key: make one. The old hashes are dropped with the lost key.
  std::string key = "kl_" + random_token(32);
  if (auto st = store.replace_api_keys(sha256_hex(key)); !st) return st.error();
  if (auto st = write_key_file(h.key_file, key); !st) return st.error();
  keys.hashes_ = {sha256_hex(key)};
  h.generated = true;
  return keys;
}

std::optional<std::string> ApiKeys::identify(std::string_view presented) const {
  if (presented.empty() || presented.size() > 512) return std::nullopt;
  auto hash = sha256_hex(presented);
  const std::string* match = nullptr;
  for (auto& h : hashes_) {
    if (constant_time_equal(h, hash)) match = &h;  // no early exit: same time for every key
  }
  if (!match) return std::nullopt;
  return match->substr(0, 16);
}

}  // namespace kindling::control
