// The session lifecycle: starting -> ready -> released | expired | failed.
// Owns live sessions, their machines, timers and attached CDP clients, and
// keeps the store in step. A session's browser comes from the standby pool
// (warm) or a fresh launch (cold). Every method runs on the io_context's one
// thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/result.hpp"
#include "control/download_watch.hpp"
#include "control/profile_store.hpp"
#include "control/session_files.hpp"
#include "control/session_options.hpp"
#include "control/session_record.hpp"
#include "control/session_store.hpp"
#include "node/agent_link.hpp"
#include "node/browser_launch.hpp"
#include "node/machine.hpp"
#include "node/machine_reaper.hpp"
#include "node/standby_pool.hpp"

namespace kindling::control {

// Something attached to a live session that must hear when it ends: a CDP
// websocket proxy, for instance.
class SessionClient {
 public:
  virtual ~SessionClient() = default;
  virtual void terminate(int close_code, const std::string& reason) = 0;
};

class LiveSession {
 public:
  const SessionRecord& record() const { return record_; }
  const std::string& token() const { return token_; }
  const std::string& browser_ws_path() const { return browser_.ready.browser.websocket_path; }

 private:
  friend class SessionManager;
  explicit LiveSession(boost::asio::io_context& io) : lifetime_timer_(io), idle_timer_(io), profile_timer_(io) {}

  SessionRecord record_;
  std::string token_;
  SteadyClock::time_point requested_at_;
  node::ReadyBrowser browser_;        // machine, control channel, exit watch
  std::function<void()> cancel_launch_;  // while a cold start runs
  boost::asio::steady_timer lifetime_timer_;
  boost::asio::steady_timer idle_timer_;
  std::vector<std::weak_ptr<SessionClient>> clients_;
  std::string owner_;  // API key id
  std::optional<UpstreamProxy> proxy_;  // with credentials: only here, never in record_
  std::vector<node::MachineExtension> extensions_;  // loaded at launch: cold starts only
  std::optional<SessionProfile> profile_;
  std::string profile_seed_dir_;       // made for this session; removed once it is reaped
  std::uint64_t profile_generation_ = 0;  // of the saved state it started from
  bool browser_exited_ = false;
  std::function<void()> on_browser_exit_;  // while a profile save waits for the browser to close
  boost::asio::steady_timer profile_timer_;
  std::thread profile_saver_;              // reads the machine's profile and writes the store
  SteadyClock::time_point ended_at_;       // when a profile save began (for its log line)
  std::int64_t events_ = 0;  // how many were logged
  std::function<void(Result<SessionRecord>)> on_created_;
  std::unique_ptr<DownloadWatch> downloads_;  // "download" events, while ready
  DigestCache file_digests_;                   // GET files hashes only what changed
  bool ending_ = false;
};

class SessionManager {
 public:
  // `pool` may be null: every start is then cold.
  SessionManager(boost::asio::io_context& io, SessionStore& store, node::MachineBackend& backend,
                 node::MachineReaper& reaper, node::StandbyPool* pool, SessionLimits limits);
  ~SessionManager();

  // Reconciles with what an earlier process left: live records are marked
  // failed and orphaned machines killed.
  Status recover();

  // Starts a session and calls `done` once it is ready (or has failed).
  void create(const CreateSessionOptions& options, std::function<void(Result<SessionRecord>)> done);
  Result<SessionRecord> get(const std::string& id);
  Result<std::vector<SessionRecord>> list(bool include_ended);
  Result<SessionRecord> release(const std::string& id);
  // What happened to a session, oldest first ("not_found" if unknown).
  Result<std::vector<SessionEvent>> events(const std::string& id);

  // A ready session for the CDP proxy: errors "not_found", "conflict" (ended)
  // or "unavailable" (still starting).
  Result<std::shared_ptr<LiveSession>> find_ready(const std::string& id);
  void attach(const std::shared_ptr<LiveSession>& s, const std::shared_ptr<SessionClient>& client);
  void detach(const std::shared_ptr<LiveSession>& s, const SessionClient* client);
  void open_cdp_stream(const std::shared_ptr<LiveSession>& s,
                       std::function<void(Result<std::unique_ptr<node::AgentSocket>>)> done);

  // A ready session's files (session_files.hpp): downloads listed and
  // opened by name, uploads written for file inputs (their in-machine path
  // is kUploadsDir/<name>). They go with the machine at release.
  Result<std::vector<SessionFile>> list_files(const std::string& id);
  Result<UniqueFd> open_file(const std::string& id, const std::string& name, std::uint64_t& size);
  Result<SessionFile> upload_file(const std::string& id, const std::string& name, std::string_view data);

  // Ends every live session (clients hear close code 1001), empties the
  // pool, and calls `done` once every machine is reaped.
  void shutdown(std::function<void()> done);

  // Sessions not yet ended: a released session frees its slot at once, even
  // while its machine is still being reaped.
  std::size_t live_count() const;
  int live_count_for(const std::string& owner) const;
  const node::StandbyPool* pool() const { return pool_; }
  const SessionLimits& limits() const { return limits_; }
  // A session whose machine may still show this uploaded extension (live,
  // or ended and not yet reaped), if any: its files must stay until then.
  std::optional<std::string> session_using_extension(const std::string& extension_id) const;
  // Where profiles live; without one, a create that names a profile is refused.
  void set_profile_store(ProfileStore* store) { profiles_ = store; }
  // A session (live or still saving) using this profile; with
  // `persisting_only`, only one that will save it.
  std::optional<std::string> session_using_profile(const std::string& profile_id, bool persisting_only) const;

 private:
  // A live session's record with what only the running machine knows (its
  // network counters), as GET, list and the create answer show it.
  static SessionRecord live_view(const LiveSession& s);
  void start_cold(const std::shared_ptr<LiveSession>& s);
  void start_from_pool(const std::shared_ptr<LiveSession>& s);
  // Where every start, pooled or cold, delivers its browser (or why not).
  void receive_browser(const std::weak_ptr<LiveSession>& weak, Result<node::ReadyBrowser> browser);
  // Takes ownership of a ready browser and makes the session ready.
  void bind(const std::shared_ptr<LiveSession>& s, node::ReadyBrowser browser);
  // The last step of a start: the session is ready and its creator answered.
  void make_ready(const std::shared_ptr<LiveSession>& s);
  // bind's steps after the handover: the upstream proxy, then the identity.
  void apply_proxy(const std::shared_ptr<LiveSession>& s);
  void apply_identity(const std::shared_ptr<LiveSession>& s);
  void end(const std::shared_ptr<LiveSession>& s, SessionStatus status, const std::string& reason, int close_code);
  // end()'s last step: the machine goes to the reaper.
  void dispose(const std::shared_ptr<LiveSession>& s);
  // Profiles (session_profile.cpp): the browser closed gracefully, its
  // user-data-dir read and saved on a worker thread, then dispose().
  Status seed_profile(LiveSession& s);
  void save_profile(const std::shared_ptr<LiveSession>& s);
  void collect_and_save(const std::shared_ptr<LiveSession>& s);
  // Logs a "download" event for each file the session's pages finish downloading.
  void watch_downloads(const std::shared_ptr<LiveSession>& s);
  void arm_idle_timer(const std::shared_ptr<LiveSession>& s);
  void persist(const SessionRecord& r);
  // Logs an event; past kMaxEvents only the session's end is still logged,
  // so a client reconnecting in a loop cannot grow the database unbounded.
  void log_event(LiveSession& s, std::string type, std::string detail, bool always = false);
  static constexpr std::int64_t kMaxEvents = 200;
  void poll_shutdown();

  boost::asio::io_context& io_;
  SessionStore& store_;
  node::MachineBackend& backend_;
  node::MachineReaper& reaper_;
  node::StandbyPool* pool_;
  ProfileStore* profiles_ = nullptr;
  SessionLimits limits_;
  KeyQuota quota_;
  std::map<std::string, std::shared_ptr<LiveSession>> live_;
  bool shutting_down_ = false;
  std::function<void()> on_shutdown_done_;
  boost::asio::steady_timer shutdown_poll_;
};

}  // namespace kindling::control
