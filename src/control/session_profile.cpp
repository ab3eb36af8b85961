// SessionManager's profile steps (docs/profiles.md): a session starts from
// a seed (the saved state unpacked for its machine), and one created with
// persist: true saves its browser's state back when it ends: the browser is
// closed gracefully (Browser.close, so cookies and IndexedDB reach the
// disk), its user-data-dir is read from the machine (hostile: see
// profile_collect.hpp) and written to the store on a worker thread, and only
// then is the machine disposed of.
#include <fmt/format.h>

#include <boost/asio/post.hpp>

#include "common/log.hpp"
#include "control/profile_collect.hpp"
#include "control/session_manager.hpp"

namespace kindling::control {

namespace {
// How long a browser may take to close before the save is given up (the
// previous version is kept). Chromium 156 closes in well under a second.
constexpr auto kBrowserCloseTimeout = std::chrono::seconds(15);
}  // namespace

Status SessionManager::seed_profile(LiveSession& s) {
  const auto& id = s.profile_->id;
  // An id the store does not have is the request's fault (400), as for
  // extensions: the route itself exists.
  auto info = profiles_->get(id);
  if (!info) {
    if (info.error().code == "not_found")
      return make_error("unknown profile '" + id + "' (create one with POST /v1/profiles)", "bad_request");
    return info.error();
  }
  auto seed = profiles_->make_seed(id, s.record_.id);
  if (!seed) {
    spdlog::error("session {}: profile {}: {}", s.record_.id, id, seed.error().message);
    if (seed.error().code == "not_found") return make_error("unknown profile '" + id + "'", "bad_request");
    return seed.error();
  }
  s.profile_generation_ = info->generation;
  s.profile_seed_dir_ = std::move(seed).value();
  return ok_status();
}

void SessionManager::save_profile(const std::shared_ptr<LiveSession>& s) {
  s->ended_at_ = SteadyClock::now();
  if (s->browser_exited_) return collect_and_save(s);  // closed by a client: already flushed
  std::weak_ptr<LiveSession> weak = s;
  s->on_browser_exit_ = [this, weak] {
    auto s = weak.lock();
    if (!s) return;
    s->profile_timer_.cancel();
    collect_and_save(s);
  };
  s->browser_.control->send(agent_protocol::CloseBrowser{});
  s->profile_timer_.expires_after(kBrowserCloseTimeout);
  s->profile_timer_.async_wait([this, weak](boost::system::error_code ec) {
    auto s = weak.lock();
    if (ec || !s || !s->on_browser_exit_) return;
    s->on_browser_exit_ = nullptr;
    log_event(*s, "profile_save_failed",
              fmt::format("profile {} not saved: the browser did not close within {} s; the previous version is kept",
                          s->profile_->id, kBrowserCloseTimeout.count()),
              true);
    dispose(s);
  });
}

void SessionManager::collect_and_save(const std::shared_ptr<LiveSession>& s) {
  auto dir = s->browser_.machine->open_machine_dir(node::kMachineUserDataDir);
  if (!dir) {
    log_event(*s, "profile_save_failed",
              "profile " + s->profile_->id + " not saved: " + dir.error().message + "; the previous version is kept",
              true);
    return dispose(s);
  }
  auto fd = std::make_shared<UniqueFd>(std::move(dir).value());
  std::weak_ptr<LiveSession> weak = s;
  ProfileStore* store = profiles_;
  const std::string id = s->profile_->id;
  const std::uint64_t generation = s->profile_generation_ + 1;
  spdlog::info("session {}: saving profile {} (generation {})", s->record_.id, id, generation);
  // The machine stays up (and in live_) until the thread has posted back,
  // so shutdown waits for it too.
  s->profile_saver_ = std::thread([this, weak, fd, store, id, generation] {
    auto entries = collect_profile(fd->get(), store->limits());
    Result<ProfileInfo> saved =
        entries ? store->save(id, std::move(entries).value(), generation) : Result<ProfileInfo>(entries.error());
    boost::asio::post(io_, [this, weak, saved = std::move(saved)] {
      auto s = weak.lock();
      if (!s) return;
      if (s->profile_saver_.joinable()) s->profile_saver_.join();
      if (saved)
        log_event(*s, "profile_saved",
                  fmt::format("profile {} saved: generation {}, {} bytes on disk{}", saved->id, saved->generation,
                              saved->size_bytes, saved->encrypted ? ", encrypted" : ""),
                  true);
      else
        log_event(
            *s, "profile_save_failed",
            "profile " + s->profile_->id + " not saved: " + saved.error().message +
                (saved.error().message.find("previous version") == std::string::npos ? "; the previous version is kept"
                                                                                     : ""),
            true);
      if (saved)
        spdlog::info("session {}: profile {} saved (generation {}, {} bytes on disk) {:.1f} ms after the end",
                     s->record_.id, saved->id, saved->generation, saved->size_bytes,
                     millis_between(s->ended_at_, SteadyClock::now()));
      else
        spdlog::warn("session {}: profile {} not saved: {}", s->record_.id, s->profile_->id, saved.error().message);
      dispose(s);
    });
  });
}

}  // namespace kindling::control
