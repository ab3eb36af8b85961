// Durable state of the embedded default: sessions and API key hashes in one
// SQLite database in the data directory. All calls come from one thread.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "control/session_record.hpp"

namespace kindling::control {

class SessionStore {
 public:
  static Result<std::unique_ptr<SessionStore>> open(const std::string& path);
  ~SessionStore();
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  Status save(const SessionRecord& record);
  Result<std::optional<SessionRecord>> find(const std::string& id);
  // Newest first; only starting/ready sessions when live_only.
  Result<std::vector<SessionRecord>> list(bool live_only, int limit);

  // A session's event log, oldest first.
  Status add_event(const std::string& session_id, const SessionEvent& event);
  Result<std::vector<SessionEvent>> events(const std::string& session_id, int limit);

  // API keys are stored as SHA-256 hashes only.
  Result<std::vector<std::string>> api_key_hashes();
  Status replace_api_keys(const std::string& key_hash);

 private:
  explicit SessionStore(sqlite3* db) : db_(db) {}
  Status exec(const char* sql);
  sqlite3* db_;
};

}  // namespace kindling::control
