#include "control/session_manager.hpp"

#include <boost/asio/post.hpp>
#include <unistd.h>

#include <algorithm>

#include "common/log.hpp"
#include "common/secrets.hpp"

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
                               SessionLimits limits)
    : io_(io), store_(store), backend_(backend), limits_(std::move(limits)) {}

SessionManager::~SessionManager() { reapers_.join(); }

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

void SessionManager::create(const CreateSessionOptions& options, std::function<void(Result<SessionRecord>)> done) {
  auto requested_at = SteadyClock::now();
  if (shutting_down_) return done(make_error("server is shutting down", "unavailable"));
  if (static_cast<int>(live_.size()) >= limits_.max_live_sessions)
    return done(make_error("host is at capacity (" + std::to_string(limits_.max_live_sessions) +
                               " live sessions); retry after a session ends",
                           "capacity"));

  auto s = std::shared_ptr<LiveSession>(new LiveSession(io_));
  s->requested_at_ = requested_at;
  s->token_ = random_token(32);
  auto& r = s->record_;
  r.id = random_hex(12);
  r.status = SessionStatus::kStarting;
  r.created_at_ms = unix_millis();
  r.timeout_seconds = options.timeout_seconds ? options.timeout_seconds : limits_.default_timeout_seconds;
  r.idle_timeout_seconds =
      options.idle_timeout_seconds ? options.idle_timeout_seconds : limits_.default_idle_timeout_seconds;
  r.expires_at_ms = r.created_at_ms + static_cast<std::int64_t>(r.timeout_seconds) * 1000;
  r.backend = backend_.name();
  r.timings.queued_ms = millis_between(requested_at, SteadyClock::now());
  s->on_created_ = std::move(done);
  live_[r.id] = s;
  persist(r);

  node::MachineSpec spec = limits_.machine;
  spec.id = r.id;
  auto machine = backend_.start(spec);
  if (!machine) {
    spdlog::error("session {}: machine did not start: {}", r.id, machine.error().message);
    return end(s, SessionStatus::kFailed, "machine did not start: " + machine.error().message, close_code::kFailed);
  }
  s->machine_ = std::move(machine).value();
  r.machine_pid = s->machine_->pid();
  r.timings.machine_acquired_ms = millis_between(requested_at, SteadyClock::now());
  spdlog::info("session {}: machine {} started (pid {}) in {:.1f} ms", r.id, r.backend, r.machine_pid,
               *r.timings.machine_acquired_ms);

  // The machine's end, however it comes, ends the session.
  int watch_fd = ::dup(s->machine_->exit_fd());
  boost::system::error_code ec;
  if (watch_fd >= 0) s->exit_watch_.assign(watch_fd, ec);
  if (watch_fd < 0 || ec) {
    if (watch_fd >= 0 && ec) ::close(watch_fd);
    return end(s, SessionStatus::kFailed, "cannot watch the machine's process", close_code::kFailed);
  }
  std::weak_ptr<LiveSession> weak = s;
  s->exit_watch_.async_wait(asio::posix::stream_descriptor::wait_read, [this, weak](boost::system::error_code ec) {
    auto s = weak.lock();
    if (ec || !s || s->ending_) return;
    end(s, SessionStatus::kFailed, "machine exited unexpectedly", close_code::kFailed);
  });

  s->lifetime_timer_.expires_after(std::chrono::seconds(r.timeout_seconds));
  s->lifetime_timer_.async_wait([this, weak](boost::system::error_code ec) {
    auto s = weak.lock();
    if (ec || !s) return;
    end(s, SessionStatus::kExpired, "max lifetime of " + std::to_string(s->record_.timeout_seconds) + " s reached",
        close_code::kLifetimeExpired);
  });

  node::AgentControl::Events events;
  events.on_ready = [this, weak](const ap::Ready& ready) {
    if (auto s = weak.lock()) on_ready(s, ready);
  };
  events.on_browser_exited = [this, weak](const ap::BrowserExited& e) {
    auto s = weak.lock();
    if (!s || s->ending_) return;
    bool clean = e.exit_code && *e.exit_code == 0 && !e.signal;
    if (clean && s->record_.status == SessionStatus::kReady)
      end(s, SessionStatus::kReleased, "browser closed by a client (Browser.close)", close_code::kReleased);
    else
      end(s, SessionStatus::kFailed, "browser " + describe_exit(e), close_code::kFailed);
  };
  events.on_failure = [this, weak](const std::string& why) {
    auto s = weak.lock();
    if (!s || s->ending_) return;
    end(s, SessionStatus::kFailed, why, close_code::kFailed);
  };
  s->control_ = node::AgentControl::open(io_, *s->machine_, std::move(events),
                                         std::chrono::seconds(limits_.ready_timeout_seconds));
  // A start that never becomes ready is a failure, not a hang.
  s->idle_timer_.expires_after(std::chrono::seconds(limits_.ready_timeout_seconds));
  s->idle_timer_.async_wait([this, weak](boost::system::error_code ec) {
    auto s = weak.lock();
    if (ec || !s || s->record_.status != SessionStatus::kStarting) return;
    end(s, SessionStatus::kFailed,
        "browser did not become ready within " + std::to_string(limits_.ready_timeout_seconds) + " s",
        close_code::kFailed);
  });
}

void SessionManager::on_ready(const std::shared_ptr<LiveSession>& s, const ap::Ready& ready) {
  if (s->ending_ || s->record_.status != SessionStatus::kStarting) return;
  auto& r = s->record_;
  r.status = SessionStatus::kReady;
  r.chromium_sandbox = ready.chromium_sandbox;
  r.sandbox_note = ready.sandbox_note;
  r.browser_version = ready.browser.version;
  r.timings.ready_ms = millis_between(s->requested_at_, SteadyClock::now());
  r.timings.agent_launch_ms = ready.launch_ms;
  r.timings.agent_cdp_ready_ms = ready.cdp_ready_ms;
  s->browser_ws_path_ = ready.browser.websocket_path;
  persist(r);
  spdlog::info("session {}: ready in {:.1f} ms ({}, chromium sandbox {})", r.id, *r.timings.ready_ms,
               r.browser_version, ready.chromium_sandbox ? "on" : "OFF: " + ready.sandbox_note);
  arm_idle_timer(s);
  if (auto cb = std::move(s->on_created_)) cb(r);
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

Result<SessionRecord> SessionManager::get(const std::string& id) {
  if (auto it = live_.find(id); it != live_.end()) return it->second->record_;
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
    if (auto it = live_.find(r.id); it != live_.end()) r = it->second->record_;
  if (!include_ended)
    std::erase_if(*stored, [](const SessionRecord& r) { return !is_live(r.status); });
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
}

void SessionManager::detach(const std::shared_ptr<LiveSession>& s, const SessionClient* client) {
  std::erase_if(s->clients_, [client](const auto& w) {
    auto c = w.lock();
    return !c || c.get() == client;
  });
  if (s->clients_.empty() && !s->ending_ && s->record_.status == SessionStatus::kReady) arm_idle_timer(s);
}

void SessionManager::open_cdp_stream(const std::shared_ptr<LiveSession>& s,
                                     std::function<void(Result<std::unique_ptr<node::AgentSocket>>)> done) {
  if (s->ending_ || !s->machine_) return done(make_error("session has ended", "conflict"));
  node::open_cdp_stream(io_, *s->machine_, std::move(done));
}

void SessionManager::end(const std::shared_ptr<LiveSession>& s, SessionStatus status, const std::string& reason,
                         int code) {
  if (s->ending_) return;
  s->ending_ = true;
  auto& r = s->record_;
  r.status = status;
  r.ended_at_ms = unix_millis();
  r.end_reason = reason;
  persist(r);
  spdlog::info("session {}: {} ({})", r.id, to_string(status), reason);

  s->lifetime_timer_.cancel();
  s->idle_timer_.cancel();
  boost::system::error_code ignored;
  s->exit_watch_.cancel(ignored);
  auto clients = std::move(s->clients_);
  for (auto& w : clients)
    if (auto c = w.lock()) c->terminate(code, reason);
  if (s->control_) {
    s->control_->close();
  }
  if (auto cb = std::move(s->on_created_)) cb(make_error("session failed to start: " + reason, "start_failed"));

  if (!s->machine_) {
    live_.erase(r.id);
    maybe_finish_shutdown();
    return;
  }
  s->machine_->kill();
  ++reaping_;
  asio::post(reapers_, [this, s] {
    auto how = s->machine_->reap();
    asio::post(io_, [this, s, how] {
      --reaping_;
      spdlog::debug("session {}: machine reaped ({})", s->record_.id, how.describe());
      s->exit_watch_.close();
      live_.erase(s->record_.id);
      maybe_finish_shutdown();
    });
  });
}

void SessionManager::shutdown(std::function<void()> done) {
  shutting_down_ = true;
  on_shutdown_done_ = std::move(done);
  std::vector<std::shared_ptr<LiveSession>> all;
  for (auto& [id, s] : live_) all.push_back(s);
  for (auto& s : all) end(s, SessionStatus::kReleased, "server shutting down", close_code::kServerShutdown);
  maybe_finish_shutdown();
}

void SessionManager::maybe_finish_shutdown() {
  if (!shutting_down_ || reaping_ > 0 || !on_shutdown_done_) return;
  bool any_live = std::any_of(live_.begin(), live_.end(), [](const auto& kv) { return !kv.second->ending_; });
  if (any_live) return;
  auto cb = std::move(on_shutdown_done_);
  cb();
}

}  // namespace kindling::control
