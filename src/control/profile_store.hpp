// Persistent browser profiles on the host (docs/profiles.md), under
// <data-dir>/profiles/<id>/: meta.json (written once, at create) and
// state.kprof (profile_archive.hpp: compressed, sealed when the server has a
// key). A save writes state.kprof.tmp, syncs it, renames it over
// state.kprof and syncs the folder, so a crash at any point leaves the
// previous version whole; open() removes what an interrupted save, create
// or delete left behind. Sessions get a profile as a "seed": the saved
// state unpacked into <dir>/.seed-<session>/, bound read-only into the
// machine and copied into the browser's user-data-dir by the agent.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "control/profile_archive.hpp"

namespace kindling::control {

struct ProfileInfo {
  std::string id;
  std::string name;  // the creator's label, may be empty
  std::int64_t created_at_ms = 0;
  std::int64_t saved_at_ms = 0;  // last save (created_at_ms until one)
  std::uint64_t size_bytes = 0;  // state.kprof on disk
  std::uint64_t generation = 0;  // saves so far
  bool encrypted = false;
};

nlohmann::json to_api_json(const ProfileInfo& p);

// kindling serve --profile-key-file: 32 raw bytes, or 64 hex digits (a
// trailing newline allowed). Anything else is refused with a message.
Result<ProfileKey> read_profile_key_file(const std::string& path);

class ProfileStore {
 public:
  static constexpr std::size_t kMaxProfiles = 1024;
  static constexpr std::size_t kMaxNameBytes = 128;

  static Result<ProfileStore> open(std::string dir, std::optional<ProfileKey> key, ProfileLimits limits = {});

  // A new, empty profile: "conflict" when kMaxProfiles exist.
  Result<ProfileInfo> create(const std::string& name);
  Result<std::vector<ProfileInfo>> list() const;
  Result<ProfileInfo> get(const std::string& id) const;  // "not_found"
  Status remove(const std::string& id);                  // "not_found"

  // Unpacks the saved state into a new folder for session `session_id` and
  // returns its path (folders 0755, files 0644: the machine's own root
  // reads it through a bind; the store's folder, 0700, keeps everyone else
  // out). Errors: "not_found", or "invalid" for a damaged or tampered file.
  Result<std::string> make_seed(const std::string& id, const std::string& session_id) const;
  void remove_seed(const std::string& session_id) const;

  // Replaces the saved state with `entries` as generation `generation`
  // (atomically: see above). "payload_too_large" past the size cap. Safe to
  // call from a worker thread while the io thread reads other profiles.
  // KINDLING_TEST_PROFILE_SAVE_DELAY_MS (tests only) sleeps after the
  // temporary file is synced and before the rename, so a test can kill the
  // server mid-save.
  Result<ProfileInfo> save(const std::string& id, std::vector<ProfileEntry> entries, std::uint64_t generation) const;

  const ProfileLimits& limits() const { return limits_; }
  bool encrypts() const { return key_.has_value(); }

  // Ids are what random_hex makes: 24 lowercase hex digits.
  static bool valid_id(std::string_view id);

 private:
  ProfileStore(std::string dir, std::optional<ProfileKey> key, ProfileLimits limits)
      : dir_(std::move(dir)), key_(key), limits_(limits) {}
  Result<std::string> read_state(const std::string& id) const;

  std::string dir_;
  std::optional<ProfileKey> key_;
  ProfileLimits limits_;
};

}  // namespace kindling::control
