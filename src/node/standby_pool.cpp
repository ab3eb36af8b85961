#include "node/standby_pool.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cmath>

#include "common/log.hpp"
#include "common/secrets.hpp"

namespace kindling::node {

namespace asio = boost::asio;
namespace ap = agent_protocol;

StandbyPool::StandbyPool(asio::io_context& io, MachineBackend& backend, MachineReaper& reaper,
                         StandbyPoolConfig config)
    : io_(io), backend_(backend), reaper_(reaper), config_(std::move(config)), backoff_timer_(io) {}

StandbyPool::~StandbyPool() {
  *alive_ = false;
  stop();
}

std::string StandbyPool::new_machine_id() { return "w-" + random_hex(10); }

void StandbyPool::start() {
  running_ = true;
  refill();
}

int StandbyPool::target_size() const {
  // Enough standbys to cover the creates expected while one refill runs.
  double window_s = std::chrono::duration<double>(config_.demand_window).count();
  double rate = demand_.size() / window_s;
  int wanted = config_.min_size + static_cast<int>(std::ceil(rate * mean_ready_ms_ / 1000.0));
  return std::clamp(wanted, config_.min_size, std::max(config_.min_size, config_.max_size));
}

void StandbyPool::note_demand() {
  auto now = SteadyClock::now();
  demand_.push_back(now);
  while (!demand_.empty() && now - demand_.front() > config_.demand_window) demand_.pop_front();
}

std::optional<ReadyBrowser> StandbyPool::take() {
  note_demand();
  std::optional<ReadyBrowser> out;
  while (!ready_.empty() && !out) {
    auto s = ready_.front();
    ready_.pop_front();
    if (s->gone) continue;
    s->gone = true;
    s->age_timer.cancel();
    boost::system::error_code ignored;
    s->browser.exit_watch->cancel(ignored);
    s->browser.control->set_events({});
    if (auto st = s->browser.machine->set_background(false); !st)
      spdlog::warn("standby {}: {}", s->browser.machine->id(), st.error().message);
    out = std::move(s->browser);
  }
  // Refill after the caller has answered its client: a start costs a few ms
  // of this thread (clone, mounts) that the create must not wait for.
  asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) refill();
  });
  return out;
}

void StandbyPool::refill() {
  if (!running_) return;
  int target = target_size();
  while (static_cast<int>(ready_.size()) + starting_ < target && starting_ < config_.max_concurrent_starts) {
    if (consecutive_failures_ > 0 && backoff_timer_.expiry() > SteadyClock::now()) return;
    ++starting_;
    MachineSpec spec = config_.spec;
    spec.id = new_machine_id();
    spec.background = true;  // a standby is made with spare cycles only
    std::weak_ptr<bool> alive = alive_;
    auto cancel = launch_browser(io_, backend_, reaper_, spec, config_.ready_timeout,
                   [this, alive, id = spec.id](Result<ReadyBrowser> r) {
                     if (alive.expired()) {
                       if (r) reaper_.dispose(std::move(r->machine));
                       return;
                     }
                     --starting_;
                     launching_.erase(id);
                     if (!r && !running_) return;  // cancelled by stop()
                     if (!r) {
                       ++consecutive_failures_;
                       spdlog::warn("standby {}: start failed ({}), attempt {}", id, r.error().message,
                                    consecutive_failures_);
                       // Back off so a broken host does not spin on failing starts.
                       auto delay = std::chrono::milliseconds(250 << std::min(consecutive_failures_, 7));
                       backoff_timer_.expires_after(delay);
                       backoff_timer_.async_wait([this, alive](boost::system::error_code ec) {
                         if (!ec && !alive.expired()) refill();
                       });
                       return;
                     }
                     consecutive_failures_ = 0;
                     if (!running_) {
                       reaper_.dispose(std::move(r->machine));
                       return;
                     }
                     adopt(std::move(r).value());
                     refill();
                   });
    // A launch that failed at once has already called back.
    if (static_cast<int>(launching_.size()) < starting_) launching_[spec.id] = std::move(cancel);
  }
}

void StandbyPool::adopt(ReadyBrowser browser) {
  auto s = std::make_shared<Standby>(io_);
  mean_ready_ms_ = 0.8 * mean_ready_ms_ + 0.2 * browser.ready_ms;
  s->browser = std::move(browser);
  std::weak_ptr<Standby> weak = s;
  await_exit(s->browser.exit_watch, [this, weak](boost::system::error_code ec) {
    if (auto s = weak.lock(); s && !ec) retire(s, "machine exited");
  });
  AgentControl::Events events;
  events.on_browser_exited = [this, weak](const ap::BrowserExited&) {
    if (auto s = weak.lock()) retire(s, "browser died while on standby");
  };
  events.on_failure = [this, weak](const std::string& why) {
    if (auto s = weak.lock()) retire(s, why);
  };
  s->browser.control->set_events(std::move(events));
  s->age_timer.expires_after(config_.max_age);
  s->age_timer.async_wait([this, weak](boost::system::error_code ec) {
    if (auto s = weak.lock(); s && !ec) retire(s, "reached its max standby age");
  });
  spdlog::info("standby {}: ready in {:.0f} ms ({} ready, target {})", s->browser.machine->id(), s->browser.ready_ms,
               ready_.size() + 1, target_size());
  ready_.push_back(std::move(s));
}

void StandbyPool::retire(const std::shared_ptr<Standby>& s, const std::string& why) {
  if (s->gone) return;
  s->gone = true;
  spdlog::info("standby {}: replaced ({})", s->browser.machine->id(), why);
  s->age_timer.cancel();
  boost::system::error_code ignored;
  s->browser.exit_watch->cancel(ignored);
  s->browser.control->close();
  ready_.remove(s);
  reaper_.dispose(std::move(s->browser.machine));
  refill();
}

void StandbyPool::stop() {
  running_ = false;
  backoff_timer_.cancel();
  auto launching = std::move(launching_);
  launching_.clear();
  for (auto& [id, cancel] : launching) cancel();  // each disposes its machine
  auto all = std::move(ready_);
  ready_.clear();
  for (auto& s : all) {
    if (s->gone) continue;
    s->gone = true;
    s->age_timer.cancel();
    boost::system::error_code ignored;
    s->browser.exit_watch->cancel(ignored);
    s->browser.control->close();
    reaper_.dispose(std::move(s->browser.machine));
  }
}

}  // namespace kindling::node
