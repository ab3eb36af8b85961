// API keys: stored only as SHA-256 hashes; the plain key is shown once, in a
// file of the data directory readable by its owner alone.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "control/session_store.hpp"

namespace kindling::control {

class ApiKeys {
 public:
  struct Setup {
    std::string key_file;   // where the key was written, empty if from the environment
    bool from_environment = false;
    bool generated = false;
  };

  // KINDLING_API_KEY (passed as env_key) wins; otherwise the key file of the
  // data directory must match a stored hash, and a new key is made if not.
  static Result<ApiKeys> setup(SessionStore& store, const std::string& data_dir, const std::string& env_key,
                               Setup* how);

  // The id of the key presented (a prefix of its hash, safe to log and to
  // count limits by), or nullopt if it matches none.
  std::optional<std::string> identify(std::string_view presented) const;
  bool verify(std::string_view presented) const { return identify(presented).has_value(); }

 private:
  std::vector<std::string> hashes_;
};

}  // namespace kindling::control
