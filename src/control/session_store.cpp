#include "control/session_store.hpp"

#include "common/clock.hpp"

namespace kindling::control {

namespace {

using nlohmann::json;

// One prepared statement, finalized on every path.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void bind(int i, const std::string& s) { sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT); }
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  std::string column_text(int i) {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i))) : std::string();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

json timings_to_json(const StartTimings& t) {
  json j = {{"agentLaunchMs", t.agent_launch_ms}, {"agentCdpReadyMs", t.agent_cdp_ready_ms}};
  if (t.queued_ms) j["queuedMs"] = *t.queued_ms;
  if (t.machine_acquired_ms) j["machineAcquiredMs"] = *t.machine_acquired_ms;
  if (t.identity_applied_ms) j["identityAppliedMs"] = *t.identity_applied_ms;
  if (t.ready_ms) j["readyMs"] = *t.ready_ms;
  return j;
}

json to_db_json(const SessionRecord& r) {
  json j = {{"id", r.id},
            {"status", to_string(r.status)},
            {"createdAtMs", r.created_at_ms},
            {"expiresAtMs", r.expires_at_ms},
            {"timeoutSeconds", r.timeout_seconds},
            {"idleTimeoutSeconds", r.idle_timeout_seconds},
            {"endReason", r.end_reason},
            {"backend", r.backend},
            {"machineId", r.machine_id},
            {"machinePid", r.machine_pid},
            {"sandboxNote", r.sandbox_note},
            {"browserVersion", r.browser_version},
            {"start", r.start_path},
            {"timings", timings_to_json(r.timings)},
            {"identity", identity_to_json(r.identity)},
            {"proxy", r.proxy},
            {"profile", r.profile},
            {"extensions", r.extensions}};
  j["endedAtMs"] = r.ended_at_ms ? json(*r.ended_at_ms) : json(nullptr);
  j["chromiumSandbox"] = r.chromium_sandbox ? json(*r.chromium_sandbox) : json(nullptr);
  return j;
}

std::optional<SessionRecord> from_db_json(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  SessionRecord r;
  r.id = j.value("id", "");
  r.status = parse_status(j.value("status", "failed")).value_or(SessionStatus::kFailed);
  r.created_at_ms = j.value("createdAtMs", std::int64_t{0});
  r.expires_at_ms = j.value("expiresAtMs", std::int64_t{0});
  if (j.contains("endedAtMs") && j["endedAtMs"].is_number()) r.ended_at_ms = j["endedAtMs"].get<std::int64_t>();
  r.timeout_seconds = j.value("timeoutSeconds", 0);
  r.idle_timeout_seconds = j.value("idleTimeoutSeconds", 0);
  r.end_reason = j.value("endReason", "");
  r.backend = j.value("backend", "");
  r.machine_id = j.value("machineId", "");
  r.machine_pid = j.value("machinePid", 0);
  if (j.contains("chromiumSandbox") && j["chromiumSandbox"].is_boolean()) r.chromium_sandbox = j["chromiumSandbox"].get<bool>();
  r.sandbox_note = j.value("sandboxNote", "");
  r.browser_version = j.value("browserVersion", "");
  r.start_path = j.value("start", "cold");
  if (auto i = j.find("identity"); i != j.end()) r.identity = identity_from_json(*i);
  if (auto p = j.find("proxy"); p != j.end() && p->is_object()) r.proxy = *p;
  if (auto p = j.find("profile"); p != j.end() && p->is_object()) r.profile = *p;
  if (auto e = j.find("extensions"); e != j.end() && e->is_array())
    for (const auto& id : *e)
      if (id.is_string()) r.extensions.push_back(id.get<std::string>());
  if (auto t = j.find("timings"); t != j.end() && t->is_object()) {
    r.timings.agent_launch_ms = t->value("agentLaunchMs", 0.0);
    r.timings.agent_cdp_ready_ms = t->value("agentCdpReadyMs", 0.0);
    if (t->contains("queuedMs")) r.timings.queued_ms = (*t)["queuedMs"].get<double>();
    if (t->contains("machineAcquiredMs")) r.timings.machine_acquired_ms = (*t)["machineAcquiredMs"].get<double>();
    if (t->contains("identityAppliedMs")) r.timings.identity_applied_ms = (*t)["identityAppliedMs"].get<double>();
    if (t->contains("readyMs")) r.timings.ready_ms = (*t)["readyMs"].get<double>();
  }
  return r;
}

}  // namespace

Result<std::unique_ptr<SessionStore>> SessionStore::open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return make_error("cannot open database " + path + ": " + why);
  }
  std::unique_ptr<SessionStore> store(new SessionStore(db));
  sqlite3_busy_timeout(db, 5000);
  // WAL keeps a crash from corrupting the file; NORMAL sync is durable
  // against process crashes, which is what reconciliation relies on.
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                          "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, status TEXT NOT NULL, "
                          "created_at INTEGER NOT NULL, record TEXT NOT NULL)",
                          "CREATE INDEX IF NOT EXISTS sessions_by_status ON sessions(status, created_at)",
                          "CREATE TABLE IF NOT EXISTS api_keys (hash TEXT PRIMARY KEY, created_at INTEGER NOT NULL)",
                          "CREATE TABLE IF NOT EXISTS session_events (session_id TEXT NOT NULL, seq INTEGER NOT NULL, "
                          "at INTEGER NOT NULL, type TEXT NOT NULL, detail TEXT NOT NULL, "
                          "PRIMARY KEY(session_id, seq))"}) {
    if (auto st = store->exec(sql); !st) return st.error();
  }
  return store;
}

SessionStore::~SessionStore() { sqlite3_close(db_); }

Status SessionStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "unknown error";
    sqlite3_free(err);
    return make_error(std::string("database error: ") + why);
  }
  return ok_status();
}

Status SessionStore::save(const SessionRecord& record) {
  Statement st(db_, "INSERT INTO sessions(id, status, created_at, record) VALUES(?1, ?2, ?3, ?4) "
                    "ON CONFLICT(id) DO UPDATE SET status=excluded.status, record=excluded.record");
  if (!st.ok()) return make_error(std::string("database error: ") + sqlite3_errmsg(db_));
  st.bind(1, record.id);
  st.bind(2, std::string(to_string(record.status)));
  st.bind(3, record.created_at_ms);
  st.bind(4, to_db_json(record).dump());
  if (sqlite3_step(st.get()) != SQLITE_DONE) return make_error(std::string("database error: ") + sqlite3_errmsg(db_));
  return ok_status();
}

Status SessionStore::add_event(const std::string& session_id, const SessionEvent& event) {
  Statement st(db_, "INSERT OR REPLACE INTO session_events(session_id, seq, at, type, detail) VALUES(?1, ?2, ?3, ?4, ?5)");
  if (!st.ok()) return make_error(std::string("database error: ") + sqlite3_errmsg(db_));
  st.bind(1, session_id);
  st.bind(2, event.seq);
  st.bind(3, event.at_ms);
  st.bind(4, event.type);
  st.bind(5, event.detail);
  if (sqlite3_step(st.get()) != SQLITE_DONE) return make_error(std::string("database error: ") + sqlite3_errmsg(db_));
  return ok_status();
}

Result<std::vector<SessionEvent>> SessionStore::events(const std::string& session_id, int limit) {
  Statement st(db_, "SELECT seq, at, type, detail FROM session_events WHERE session_id = ?1 ORDER BY seq LIMIT ?2");
  if (!st.ok()) return make_error(std::string("database error: ") + sqlite3_errmsg(db_));
  st.bind(1, session_id);
  st.bind(2, static_cast<std::int64_t>(limit));
  std::vector<SessionEvent> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    SessionEvent e;
    e.seq = sqlite3_column_int64(st.get(), 0);
    e.at_ms = sqlite3_column_int64(st.get(), 1);
    e.type = st.column_text(2);
    e.detail = st.column_text(3);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return make_error(std::string("database error: ") + sqlite3_errmsg(db_));
  return out;
}

Result<std::optional<SessionRecord>> SessionStore::find(const std::string& id) {
  Statement st(db_, "SELECT record FROM sessions WHERE id = ?1");
  if (!st.ok()) return make_error(std::string("database error: ") + sqlite3_errmsg(db_));
  st.bind(1, id);
  int rc = sqlite3_step(st.get());
  if (rc == SQLITE_DONE) return std::optional<SessionRecord>();
  if (rc != SQLITE_ROW) return make_error(std::string("database error: ") + sqlite3_errmsg(db_));
  return from_db_json(st.column_text(0));
}

Result<std::vector<SessionRecord>> SessionStore::list(bool live_only, int limit) {
  Statement st(db_, live_only ? "SELECT record FROM sessions WHERE status IN ('starting','ready') "
                                "ORDER BY created_at DESC LIMIT ?1"
                              : "SELECT record FROM sessions ORDER BY created_at DESC LIMIT ?1");
  if (!st.ok()) return make_error(std::string("database error: ") + sqlite3_errmsg(db_));
  st.bind(1, static_cast<std::int64_t>(limit));
  std::vector<SessionRecord> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW)
    if (auto r = from_db_json(st.column_text(0))) out.push_back(std::move(*r));
  if (rc != SQLITE_DONE) return make_error(std::string("database error: ") + sqlite3_errmsg(db_));
  return out;
}

Result<std::vector<std::string>> SessionStore::api_key_hashes() {
  Statement st(db_, "SELECT hash FROM api_keys");
  if (!st.ok()) return make_error(std::string("database error: ") + sqlite3_errmsg(db_));
  std::vector<std::string> out;
  while (sqlite3_step(st.get()) == SQLITE_ROW) out.push_back(st.column_text(0));
  return out;
}

Status SessionStore::replace_api_keys(const std::string& key_hash) {
  if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
  if (auto s = exec("DELETE FROM api_keys"); !s) {
    (void)exec("ROLLBACK");
    return s;
  }
  Statement st(db_, "INSERT INTO api_keys(hash, created_at) VALUES(?1, ?2)");
  st.bind(1, key_hash);
  st.bind(2, unix_millis());
  if (!st.ok() || sqlite3_step(st.get()) != SQLITE_DONE) {
    (void)exec("ROLLBACK");
    return make_error(std::string("database error: ") + sqlite3_errmsg(db_));
  }
  return exec("COMMIT");
}

}  // namespace kindling::control
