// Uploaded Chrome extensions, unpacked on the host under
// <data-dir>/extensions/<id>/: files/ (the extension, bound read-only into
// machines that load it) and meta.json (what the API shows). An upload is
// written to a temporary folder and renamed into place, so a crash leaves
// either the whole extension or none of it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "control/extension_archive.hpp"

namespace kindling::control {

struct ExtensionInfo {
  std::string id;
  std::string name;
  std::string version;
  int manifest_version = 0;
  std::string description;
  std::uint64_t size_bytes = 0;  // all files, unpacked
  std::uint64_t file_count = 0;
  std::string sha256;  // of the uploaded zip
  std::int64_t created_at_ms = 0;
};

nlohmann::json to_api_json(const ExtensionInfo& e);

class ExtensionStore {
 public:
  static constexpr std::size_t kMaxExtensions = 256;

  // Creates `dir` if needed and removes what an interrupted upload or
  // delete left there.
  static Result<ExtensionStore> open(std::string dir, ExtensionArchiveLimits limits = {});

  // Validates the zip (extension_archive.hpp) and stores it: "bad_request"
  // for a bad archive, "conflict" when kMaxExtensions are stored.
  Result<ExtensionInfo> add(std::string_view zip);
  Result<std::vector<ExtensionInfo>> list() const;
  Result<ExtensionInfo> get(const std::string& id) const;  // "not_found"
  Status remove(const std::string& id);                    // "not_found"

  // The unpacked extension on the host, for a machine to bind.
  std::string files_dir(const std::string& id) const { return dir_ + "/" + id + "/files"; }
  const std::string& dir() const { return dir_; }

  // Ids are what random_hex makes: 24 lowercase hex digits.
  static bool valid_id(std::string_view id);

 private:
  ExtensionStore(std::string dir, ExtensionArchiveLimits limits) : dir_(std::move(dir)), limits_(limits) {}
  std::string dir_;
  ExtensionArchiveLimits limits_;
};

}  // namespace kindling::control
