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
    : io_(io), backend_(backend), reaper_(reaper), config_(std::move(config)), backoff_timer_(io),
      refill_timer_(io) {}

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
  schedule_refill();
  return out;
}

void StandbyPool::schedule_refill() {
  // A start blocks this thread for 10-20 ms (clone, mounts, cgroups). Right
  // after a take, the session's client is about to connect: while the pool
  // still has a standby to give, refill once that moment has passed, so the
  // start does not sit between the create and its first CDP message.
  // With the pool empty, the next create needs the start now.
  auto alive = std::weak_ptr<bool>(alive_);
  if (ready_.empty() || !waiters_.empty()) {
    asio::post(io_, [this, alive] {
      if (!alive.expired()) refill();
    });
    return;
  }
  if (refill_deferred_) return;
  refill_deferred_ = true;
  refill_timer_.expires_after(kRefillDelayAfterTake);
  refill_timer_.async_wait([this, alive](boost::system::error_code ec) {
    if (alive.expired()) return;
    refill_deferred_ = false;
    if (!ec) refill();
  });
}

std::function<void()> StandbyPool::acquire(Handout done, bool& waited) {
  waited = false;
  if (auto browser = take()) {
    done(std::move(*browser));
    return [] {};
  }
  if (!running_) {
    done(make_error("the standby pool is stopped", "unavailable"));
    return [] {};
  }
  if (queue_full()) {
    done(queue_full_error());
    return [] {};
  }
  waited = true;
  auto id = next_waiter_id_++;
  waiters_.push_back({id, std::move(done)});
  prioritise_launches();
  // take() scheduled a refill at once (the pool is empty); it counts this waiter.
  return [this, id, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    std::erase_if(waiters_, [id](const Waiter& w) { return w.id == id; });
  };
}

Error StandbyPool::queue_full_error() const {
  return make_error("host is starting browsers as fast as it can (" + std::to_string(waiters_.size()) +
                        " creates already waiting); retry shortly",
                    "capacity");
}

void StandbyPool::prioritise_launches() {
  // A standby that a create now waits for is no longer spare work.
  for (auto& [id, launch] : launching_)
    if (launch.machine)
      if (auto st = launch.machine->set_background(false); !st)
        spdlog::warn("standby {}: {}", id, st.error().message);
}

void StandbyPool::fail_oldest_waiter(const std::string& why) {
  if (waiters_.empty()) return;
  auto w = std::move(waiters_.front());
  waiters_.pop_front();
  w.done(make_error(why, "start_failed"));
}

void StandbyPool::refill() {
  if (!running_) return;
  int waiting = static_cast<int>(waiters_.size());
  int target = target_size() + waiting;
  int max_starts = waiting ? std::max(config_.max_concurrent_starts, config_.max_concurrent_starts_waiting)
                           : config_.max_concurrent_starts;
  while (static_cast<int>(ready_.size()) + starting_ < target && starting_ < max_starts) {
    if (consecutive_failures_ > 0 && backoff_timer_.expiry() > SteadyClock::now()) return;
    ++starting_;
    MachineSpec spec = config_.spec;
    spec.id = new_machine_id();
    // A standby nobody waits for is made with spare cycles only.
    spec.background = waiters_.empty();
    std::weak_ptr<bool> alive = alive_;
    launching_[spec.id] = {};
    auto cancel = launch_browser(
        io_, backend_, reaper_, spec, config_.ready_timeout,
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
            spdlog::warn("standby {}: start failed ({}), attempt {}", id, r.error().message, consecutive_failures_);
            // The oldest waiter was counting on this start.
            fail_oldest_waiter("browser did not start: " + r.error().message);
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
          mean_ready_ms_ = 0.8 * mean_ready_ms_ + 0.2 * r->ready_ms;
          if (!waiters_.empty())
            hand_out(std::move(r).value());
          else
            adopt(std::move(r).value());
          refill();
        },
        [this, alive, id = spec.id](Machine& machine, double) {
          if (alive.expired()) return;
          if (auto it = launching_.find(id); it != launching_.end()) it->second.machine = &machine;
        });
    // A launch that failed at once has already called back and erased itself.
    if (auto it = launching_.find(spec.id); it != launching_.end()) it->second.cancel = std::move(cancel);
  }
}

void StandbyPool::hand_out(ReadyBrowser browser) {
  auto w = std::move(waiters_.front());
  waiters_.pop_front();
  if (auto st = browser.machine->set_background(false); !st)
    spdlog::warn("standby {}: {}", browser.machine->id(), st.error().message);
  spdlog::info("standby {}: ready in {:.0f} ms, handed to a waiting create ({} still waiting)",
               browser.machine->id(), browser.ready_ms, waiters_.size());
  w.done(std::move(browser));
}

void StandbyPool::adopt(ReadyBrowser browser) {
  auto s = std::make_shared<Standby>(io_);
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
  refill_timer_.cancel();
  auto launching = std::move(launching_);
  launching_.clear();
  for (auto& [id, launch] : launching)
    if (launch.cancel) launch.cancel();  // each disposes its machine
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) w.done(make_error("server is shutting down", "unavailable"));
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
