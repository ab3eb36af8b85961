#include "control/session_manager.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "common/secrets.hpp"
#include "node/host_memory.hpp"

namespace kindling::control {

namespace asio = boost::asio;
namespace ap = agent_protocol;

namespace {

std::string describe_exit(const ap::BrowserExited& e) {
  if (e.signal) return "killed by signal " + std::to_string(*e.signal);
  if (e.exit_code) return "exited with status " + std::to_string(*e.exit_code);
  return e.reason.empty() ? "exited" : e.reason;
}

}  // namespace

SessionManager::SessionManager(asio::io_context& io, SessionStore& store, node::MachineBackend& backend,
                               node::MachineReaper& reaper, node::StandbyPool* pool, SessionLimits limits)
    : io_(io), store_(store), backend_(backend), reaper_(reaper), pool_(pool), limits_(std::move(limits)),
      quota_(limits_.per_key), shutdown_poll_(io) {}

SessionManager::~SessionManager() = default;

Status SessionManager::recover() {
  auto stale = store_.list(/*live_only=*/true, 1'000'000);
  if (!stale) return stale.error();
  for (auto& r : *stale) {
    r.status = SessionStatus::kFailed;
    r.ended_at_ms = unix_millis();
    r.end_reason = "server stopped while the session was live; its machine was reclaimed";
    persist(r);
    spdlog::warn("session {}: marked failed at startup (left live by an earlier server)", r.id);
  }
  auto reclaimed = backend_.reclaim_orphans();
  if (!reclaimed) return reclaimed.error();
  if (*reclaimed > 0) spdlog::warn("reclaimed {} orphaned machine(s) from an earlier server", *reclaimed);
  return ok_status();
}

void SessionManager::persist(const SessionRecord& r) {
  if (auto st = store_.save(r); !st) spdlog::error("session {}: cannot save record: {}", r.id, st.error().message);
}

void SessionManager::log_event(LiveSession& s, std::string type, std::string detail, bool always) {
  if (s.events_ >= kMaxEvents && !always) return;
  SessionEvent e{++s.events_, unix_millis(), std::move(type), std::move(detail)};
  if (auto st = store_.add_event(s.record_.id, e); !st)
    spdlog::error("session {}: cannot log event: {}", s.record_.id, st.error().message);
}

Result<std::vector<SessionEvent>> SessionManager::events(const std::string& id) {
  if (!live_.count(id)) {
    auto found = store_.find(id);
    if (!found) return found.error();
    if (!*found) return make_error("no session " + id, "not_found");
  }
  return store_.events(id, static_cast<int>(kMaxEvents) + 8);
}

void SessionManager::create(const CreateSessionOptions& options, std::function<void(Result<SessionRecord>)> done) {
  auto requested_at = SteadyClock::now();
  if (shutting_down_) return done(make_error("server is shutting down", "unavailable"));
  // The key's own limits first: they are what its holder can act on.
  if (auto st = quota_.check_live(options.owner, live_count_for(options.owner)); !st) return done(st.error());
  if (static_cast<int>(live_count()) >= limits_.max_live_sessions)
    return done(make_error("host is at capacity (" + std::to_string(limits_.max_live_sessions) +
                               " live sessions); retry after a session ends",
                           "capacity"));
  if (limits_.min_available_memory_bytes) {
    auto available = node::available_memory_bytes();
    if (available && *available < limits_.min_available_memory_bytes)
      return done(make_error("host memory headroom exhausted (" + std::to_string(*available >> 20) +
                                 " MiB available, " + std::to_string(limits_.min_available_memory_bytes >> 20) +
                                 " MiB required); retry later",
                             "capacity"));
  }
  if (pool_ && pool_->queue_full()) return done(pool_->queue_full_error());
  if (auto st = quota_.take_create(options.owner, requested_at); !st) return done(st.error());

  auto s = std::shared_ptr<LiveSession>(new LiveSession(io_));
  s->requested_at_ = requested_at;
  s->token_ = random_token(32);
  s->owner_ = options.owner;
  auto& r = s->record_;
  r.id = random_hex(12);
  r.status = SessionStatus::kStarting;
  r.created_at_ms = unix_millis();
  r.timeout_seconds = options.timeout_seconds ? options.timeout_seconds : limits_.default_timeout_seconds;
  r.idle_timeout_seconds =
      options.idle_timeout_seconds ? options.idle_timeout_seconds : limits_.default_idle_timeout_seconds;
  r.expires_at_ms = r.created_at_ms + static_cast<std::int64_t>(r.timeout_seconds) * 1000;
  r.identity = options.identity;
  s->proxy_ = options.proxy;
  if (options.proxy) r.proxy = to_public_json(*options.proxy);
  s->extensions_ = options.extensions;
  for (const auto& e : options.extensions) r.extensions.push_back(e.name);
  if (options.profile) {
    if (!profiles_) return done(make_error("this server does not store profiles", "bad_request"));
    if (options.profile->persist)
      if (auto user = session_using_profile(options.profile->id, /*persisting_only=*/true))
        return done(make_error("profile '" + options.profile->id + "' is in use by session " + *user +
                                   " with persist: true; wait until it has ended, or create this session with "
                                   "\"persist\": false for a read-only copy",
                               "conflict"));
    s->profile_ = options.profile;
    r.profile = {{"id", options.profile->id}, {"persist", options.profile->persist}};
    if (auto st = seed_profile(*s); !st) return done(st.error());
  }
  r.backend = backend_.name();
  r.timings.queued_ms = millis_between(requested_at, SteadyClock::now());
  s->on_created_ = std::move(done);
  live_[r.id] = s;

  std::weak_ptr<LiveSession> weak = s;
  s->lifetime_timer_.expires_after(std::chrono::seconds(r.timeout_seconds));
  s->lifetime_timer_.async_wait([this, weak](boost::system::error_code ec) {
    auto s = weak.lock();
    if (ec || !s) return;
    end(s, SessionStatus::kExpired, "max lifetime of " + std::to_string(s->record_.timeout_seconds) + " s reached",
        close_code::kLifetimeExpired);
  });

  if (pool_ && s->extensions_.empty() && !s->profile_) return start_from_pool(s);
  r.start_path = "cold";
  persist(r);
  // A standby's Chromium is running without the session's extensions: this
  // start launches its own, beside the pool (docs/api.md, "extensions").
  log_event(*s, "created", !s->extensions_.empty() ? "cold start: the session loads extensions"
                          : s->profile_           ? "cold start: the session starts from a saved profile"
                                                  : "cold start: the standby pool is off");
  start_cold(s);
}

void SessionManager::start_from_pool(const std::shared_ptr<LiveSession>& s) {
  // Warm unless acquire() queues us; set first, as a ready standby binds
  // (and may answer the creator) before acquire() returns.
  s->record_.start_path = "warm";
  log_event(*s, "created", "start from the standby pool");
  std::weak_ptr<LiveSession> weak = s;
  bool waited = false;
  auto withdraw = pool_->acquire(
      [this, weak](Result<node::ReadyBrowser> browser) { receive_browser(weak, std::move(browser)); },
      waited);
  auto& r = s->record_;
  if (!waited) return;
  // No standby ready: wait for the next one rather than launch a Chromium of
  // our own beside the pool's (see standby_pool.hpp).
  r.start_path = "cold";
  s->cancel_launch_ = std::move(withdraw);
  persist(r);
  log_event(*s, "waiting",
            fmt::format("no standby browser ready; waiting for a starting one ({} waiting)", pool_->waiting_count()));
}

void SessionManager::receive_browser(const std::weak_ptr<LiveSession>& weak, Result<node::ReadyBrowser> browser) {
  auto s = weak.lock();
  if (!s || s->ending_) {
    if (browser) reaper_.dispose(std::move(browser->machine));
    return;
  }
  s->cancel_launch_ = nullptr;
  if (!browser) {
    const auto& error = browser.error();
    spdlog::error("session {}: {}", s->record_.id, error.message);
    // A full start queue is the host's capacity (503), not a failed start.
    if (error.code == "capacity")
      if (auto cb = std::move(s->on_created_)) cb(error);
    return end(s, SessionStatus::kFailed, error.message, close_code::kFailed);
  }
  // A cold start knew its machine earlier (launch_browser's on_machine).
  if (!s->record_.timings.machine_acquired_ms)
    s->record_.timings.machine_acquired_ms = millis_between(s->requested_at_, SteadyClock::now());
  bind(s, std::move(browser).value());
}

void SessionManager::start_cold(const std::shared_ptr<LiveSession>& s) {
  node::MachineSpec spec = limits_.machine;
  spec.id = "c-" + s->record_.id;
  spec.extensions = s->extensions_;
  spec.profile_seed_dir = s->profile_seed_dir_;
  std::weak_ptr<LiveSession> weak = s;
  s->cancel_launch_ = node::launch_browser(
      io_, backend_, reaper_, spec, std::chrono::seconds(limits_.ready_timeout_seconds),
      [this, weak](Result<node::ReadyBrowser> browser) { receive_browser(weak, std::move(browser)); },
      [weak](const node::Machine& machine, double started_ms) {
        auto s = weak.lock();
        if (!s) return;
        s->record_.machine_id = machine.id();
        s->record_.machine_pid = machine.pid();
        s->record_.timings.machine_acquired_ms = millis_between(s->requested_at_, SteadyClock::now());
        spdlog::info("session {}: machine {} started (pid {}) in {:.1f} ms", s->record_.id, machine.id(),
                     machine.pid(), started_ms);
      });
}

void SessionManager::bind(const std::shared_ptr<LiveSession>& s, node::ReadyBrowser browser) {
  s->browser_ = std::move(browser);
  auto& r = s->record_;
  const auto& ready = s->browser_.ready;
  r.machine_id = s->browser_.machine->id();
  r.machine_pid = s->browser_.machine->pid();
  r.chromium_sandbox = ready.chromium_sandbox;
  r.sandbox_note = ready.sandbox_note;
  r.browser_version = ready.browser.version;
  r.timings.agent_launch_ms = ready.launch_ms;
  r.timings.agent_cdp_ready_ms = ready.cdp_ready_ms;

  std::weak_ptr<LiveSession> weak = s;
  node::await_exit(s->browser_.exit_watch, [this, weak](boost::system::error_code ec) {
    auto s = weak.lock();
    if (ec || !s || s->ending_) return;
    log_event(*s, "crashed", "machine exited unexpectedly", true);
    end(s, SessionStatus::kFailed, "machine exited unexpectedly", close_code::kFailed);
  });
  node::AgentControl::Events events;
  events.on_browser_exited = [this, weak](const ap::BrowserExited& e) {
    auto s = weak.lock();
    if (!s) return;
    s->browser_exited_ = true;
    if (auto hook = std::move(s->on_browser_exit_)) return hook();
    if (s->ending_) return;
    if (e.exit_code && *e.exit_code == 0 && !e.signal)
      end(s, SessionStatus::kReleased, "browser closed by a client (Browser.close)", close_code::kReleased);
    else {
      log_event(*s, "crashed", "browser " + describe_exit(e), true);
      end(s, SessionStatus::kFailed, "browser " + describe_exit(e), close_code::kFailed);
    }
  };
  events.on_failure = [this, weak](const std::string& why) {
    auto s = weak.lock();
    if (!s || s->ending_) return;
    end(s, SessionStatus::kFailed, why, close_code::kFailed);
  };
  events.on_proxy_failed = [this, weak](const std::string& message) {
    auto s = weak.lock();
    if (!s || s->ending_) return;
    // The agent's words, from inside the machine: bounded and printable.
    std::string detail = message.substr(0, 512);
    for (auto& c : detail)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    log_event(*s, "proxy_error", detail);
  };
  s->browser_.control->set_events(std::move(events));
  apply_proxy(s);
}

void SessionManager::apply_proxy(const std::shared_ptr<LiveSession>& s) {
  // Before the identity and before the session is handed out, so no request
  // of the session's client ever goes direct.
  if (!s->proxy_) return apply_identity(s);
  std::weak_ptr<LiveSession> weak = s;
  s->browser_.control->set_proxy(
      *s->proxy_, std::chrono::seconds(limits_.identity_timeout_seconds), [this, weak](Status set) {
        auto s = weak.lock();
        if (!s || s->ending_) return;
        if (set) return apply_identity(s);
        spdlog::warn("session {}: proxy not set: {}", s->record_.id, set.error().message);
        if (auto cb = std::move(s->on_created_))
          cb(make_error("cannot set the session's proxy: " + set.error().message, "unavailable"));
        end(s, SessionStatus::kFailed, "proxy not set: " + set.error().message, close_code::kFailed);
      });
}

void SessionManager::apply_identity(const std::shared_ptr<LiveSession>& s) {
  auto& r = s->record_;
  std::weak_ptr<LiveSession> weak = s;
  // Standby and cold browsers alike start with no identity; a session that
  // asks for none skips the round trip.
  if (r.identity.empty()) {
    r.timings.identity_applied_ms = millis_between(s->requested_at_, SteadyClock::now());
    return make_ready(s);
  }
  s->browser_.control->apply_identity(
      r.identity, std::chrono::seconds(limits_.identity_timeout_seconds), [this, weak](Status applied) {
        auto s = weak.lock();
        if (!s || s->ending_) return;
        if (applied) {
          s->record_.timings.identity_applied_ms = millis_between(s->requested_at_, SteadyClock::now());
          return make_ready(s);
        }
        const auto& error = applied.error();
        spdlog::warn("session {}: identity not applied: {}", s->record_.id, error.message);
        // The creator hears the precise cause (400 for a value Chromium
        // refused) before end() disposes of the machine.
        if (auto cb = std::move(s->on_created_))
          cb(make_error("cannot apply the session's identity: " + error.message, error.code));
        end(s, SessionStatus::kFailed, "identity not applied: " + error.message, close_code::kFailed);
      });
}

void SessionManager::make_ready(const std::shared_ptr<LiveSession>& s) {
  auto& r = s->record_;
  const auto& ready = s->browser_.ready;
  r.status = SessionStatus::kReady;
  r.timings.ready_ms = millis_between(s->requested_at_, SteadyClock::now());
  persist(r);
  spdlog::info("session {}: ready ({} start) in {:.1f} ms on machine {} ({}, chromium sandbox {}{})", r.id,
               r.start_path, *r.timings.ready_ms, r.machine_id, r.browser_version,
               ready.chromium_sandbox ? "on" : "OFF: " + ready.sandbox_note,
               r.identity.empty() ? "" : fmt::format(", identity applied at {:.1f} ms", *r.timings.identity_applied_ms));
  log_event(*s, "ready", fmt::format("{} start, ready in {:.1f} ms", r.start_path, *r.timings.ready_ms));
  // The agent copied the seed before Chromium started: it is not needed
  // any more, and a copy of a profile on the host is one more to guard.
  if (profiles_ && !s->profile_seed_dir_.empty()) {
    profiles_->remove_seed(r.id);
    s->profile_seed_dir_.clear();
  }
  watch_downloads(s);
  arm_idle_timer(s);
  if (auto cb = std::move(s->on_created_)) cb(live_view(*s));
}

void SessionManager::watch_downloads(const std::shared_ptr<LiveSession>& s) {
  auto dir = s->browser_.machine->open_machine_dir(kDownloadsDir);
  if (!dir) {
    spdlog::warn("session {}: no download events: {}", s->record_.id, dir.error().message);
    return;
  }
  std::weak_ptr<LiveSession> weak = s;
  auto watch = DownloadWatch::start(
      io_, std::move(dir).value(),
      [this, weak](const std::string& name, std::uint64_t size) {
        if (auto s = weak.lock(); s && !s->ending_)
          log_event(*s, "download", fmt::format("{} ({} bytes) at {}/{}", name, size, kDownloadsDir, name));
      },
      [this, weak](int reported) {
        if (auto s = weak.lock(); s && !s->ending_)
          log_event(*s, "download", fmt::format("{} downloads reported; later ones are listed, not logged", reported));
      });
  if (!watch) {
    spdlog::warn("session {}: no download events: {}", s->record_.id, watch.error().message);
    return;
  }
  s->downloads_ = std::move(watch).value();
}

void SessionManager::arm_idle_timer(const std::shared_ptr<LiveSession>& s) {
  s->idle_timer_.expires_after(std::chrono::seconds(s->record_.idle_timeout_seconds));
  std::weak_ptr<LiveSession> weak = s;
  s->idle_timer_.async_wait([this, weak](boost::system::error_code ec) {
    auto s = weak.lock();
    if (ec || !s || s->ending_) return;
    end(s, SessionStatus::kExpired,
        "idle timeout: no CDP client for " + std::to_string(s->record_.idle_timeout_seconds) + " s",
        close_code::kIdleExpired);
  });
}

std::size_t SessionManager::live_count() const {
  return static_cast<std::size_t>(
      std::count_if(live_.begin(), live_.end(), [](const auto& kv) { return !kv.second->ending_; }));
}

int SessionManager::live_count_for(const std::string& owner) const {
  return static_cast<int>(std::count_if(live_.begin(), live_.end(), [&](const auto& kv) {
    return !kv.second->ending_ && kv.second->owner_ == owner;
  }));
}

SessionRecord SessionManager::live_view(const LiveSession& s) {
  SessionRecord r = s.record_;
  if (const auto& machine = s.browser_.machine)
    if (auto counters = machine->network_counters())
      r.network = SessionRecord::NetworkUsage{counters->rx_bytes, counters->tx_bytes};
  return r;
}

std::optional<std::string> SessionManager::session_using_extension(const std::string& extension_id) const {
  for (const auto& [id, s] : live_)
    for (const auto& e : s->extensions_)
      if (e.name == extension_id) return id;
  return std::nullopt;
}

std::optional<std::string> SessionManager::session_using_profile(const std::string& profile_id,
                                                                 bool persisting_only) const {
  for (const auto& [id, s] : live_)
    if (s->profile_ && s->profile_->id == profile_id && (!persisting_only || s->profile_->persist)) return id;
  return std::nullopt;
}

Result<SessionRecord> SessionManager::get(const std::string& id) {
  if (auto it = live_.find(id); it != live_.end()) return live_view(*it->second);
  auto found = store_.find(id);
  if (!found) return found.error();
  if (!*found) return make_error("no session with id '" + id + "'", "not_found");
  return std::move(**found);
}

Result<std::vector<SessionRecord>> SessionManager::list(bool include_ended) {
  auto stored = store_.list(!include_ended, 1000);
  if (!stored) return stored.error();
  // The live map is authoritative for sessions it holds.
  for (auto& r : *stored)
    if (auto it = live_.find(r.id); it != live_.end()) r = live_view(*it->second);
  if (!include_ended) std::erase_if(*stored, [](const SessionRecord& r) { return !is_live(r.status); });
  return stored;
}

Result<SessionRecord> SessionManager::release(const std::string& id) {
  auto it = live_.find(id);
  if (it == live_.end() || it->second->ending_) {
    auto r = get(id);
    if (!r) return r.error();
    return make_error("session '" + id + "' already ended (" + std::string(to_string(r->status)) + ")", "conflict");
  }
  auto s = it->second;
  end(s, SessionStatus::kReleased, "released by the API", close_code::kReleased);
  return s->record_;
}

Result<std::shared_ptr<LiveSession>> SessionManager::find_ready(const std::string& id) {
  auto it = live_.find(id);
  if (it == live_.end()) {
    auto r = get(id);
    if (!r) return r.error();
    return make_error("session '" + id + "' has ended (" + std::string(to_string(r->status)) + ")", "conflict");
  }
  auto& s = it->second;
  if (s->ending_)
    return make_error("session '" + id + "' has ended (" + std::string(to_string(s->record_.status)) + ")",
                      "conflict");
  if (s->record_.status != SessionStatus::kReady)
    return make_error("session '" + id + "' is still starting", "unavailable");
  return s;
}

void SessionManager::attach(const std::shared_ptr<LiveSession>& s, const std::shared_ptr<SessionClient>& client) {
  std::erase_if(s->clients_, [](const auto& w) { return w.expired(); });
  s->clients_.push_back(client);
  s->idle_timer_.cancel();
  log_event(*s, "connected", std::to_string(s->clients_.size()) + " CDP client(s) connected");
}

void SessionManager::detach(const std::shared_ptr<LiveSession>& s, const SessionClient* client) {
  std::erase_if(s->clients_, [client](const auto& w) {
    auto c = w.lock();
    return !c || c.get() == client;
  });
  if (!s->ending_) log_event(*s, "disconnected", std::to_string(s->clients_.size()) + " CDP client(s) connected");
  if (s->clients_.empty() && !s->ending_ && s->record_.status == SessionStatus::kReady) arm_idle_timer(s);
}

void SessionManager::open_cdp_stream(const std::shared_ptr<LiveSession>& s,
                                     std::function<void(Result<std::unique_ptr<node::AgentSocket>>)> done) {
  if (s->ending_ || !s->browser_.machine) return done(make_error("session has ended", "conflict"));
  node::open_cdp_stream(io_, *s->browser_.machine, std::move(done));
}

void SessionManager::end(const std::shared_ptr<LiveSession>& s, SessionStatus status, const std::string& reason,
                         int code) {
  if (s->ending_) return;
  s->ending_ = true;
  auto& r = s->record_;
  const bool was_ready = r.status == SessionStatus::kReady;
  r.status = status;
  r.ended_at_ms = unix_millis();
  r.end_reason = reason;
  persist(r);
  log_event(*s, std::string(to_string(status)), reason, true);
  spdlog::info("session {}: {} ({})", r.id, to_string(status), reason);

  s->lifetime_timer_.cancel();
  s->idle_timer_.cancel();
  s->downloads_.reset();
  auto clients = std::move(s->clients_);
  for (auto& w : clients)
    if (auto c = w.lock()) c->terminate(code, reason);
  if (auto cb = std::move(s->on_created_)) cb(make_error("session failed to start: " + reason, "start_failed"));
  if (auto cancel = std::move(s->cancel_launch_)) cancel();

  // A session that ran its course saves its profile first; a failed one
  // keeps the previous version (its browser may have died mid-write).
  if (s->profile_ && s->profile_->persist && profiles_ && was_ready && s->browser_.machine &&
      (status == SessionStatus::kReleased || status == SessionStatus::kExpired))
    return save_profile(s);
  dispose(s);
}

void SessionManager::dispose(const std::shared_ptr<LiveSession>& s) {
  auto& r = s->record_;
  if (s->browser_.control) s->browser_.control->close();
  if (s->browser_.exit_watch) {
    boost::system::error_code ignored;
    s->browser_.exit_watch->cancel(ignored);
  }
  if (!s->browser_.machine) {
    if (profiles_ && !s->profile_seed_dir_.empty()) profiles_->remove_seed(r.id);
    live_.erase(r.id);
    return;
  }
  reaper_.dispose(s->browser_.machine, [this, s](node::MachineExit how) {
    spdlog::debug("session {}: machine {} reaped ({})", s->record_.id, s->record_.machine_id, how.describe());
    if (profiles_ && !s->profile_seed_dir_.empty()) profiles_->remove_seed(s->record_.id);
    live_.erase(s->record_.id);
  });
}

void SessionManager::shutdown(std::function<void()> done) {
  shutting_down_ = true;
  on_shutdown_done_ = std::move(done);
  if (pool_) pool_->stop();
  std::vector<std::shared_ptr<LiveSession>> all;
  for (auto& [id, s] : live_) all.push_back(s);
  for (auto& s : all) end(s, SessionStatus::kReleased, "server shutting down", close_code::kServerShutdown);
  poll_shutdown();
}

void SessionManager::poll_shutdown() {
  if (live_.empty() && reaper_.in_flight() == 0 && (!pool_ || pool_->starting_count() == 0)) {
    if (auto cb = std::move(on_shutdown_done_)) cb();
    return;
  }
  shutdown_poll_.expires_after(std::chrono::milliseconds(20));
  shutdown_poll_.async_wait([this](boost::system::error_code ec) {
    if (!ec) poll_shutdown();
  });
}

}  // namespace kindling::control
