// The warm pool: standby machines whose Chromium already answers CDP and has
// no identity yet. A create takes one (milliseconds) instead of launching one
// (about a second). The pool refills in the background, one start at a time
// by default so refills never starve running sessions of CPU, sizes itself
// from the recent create rate between a floor and a ceiling, and replaces
// standbys that grow old or whose browser died.
//
// When it is empty, creates queue for the next standby instead of each
// launching its own Chromium: a Chromium start costs about a CPU-second here,
// so parallel cold starts on a small host only slow each other down until
// they all time out. While creates wait, starts run at normal CPU priority
// and up to max_concurrent_starts_waiting at once; the queue is bounded.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "node/browser_launch.hpp"

namespace kindling::node {

struct StandbyPoolConfig {
  int min_size = 1;  // floor; 0 with max_size 0 disables the pool
  int max_size = 4;  // ceiling
  std::chrono::seconds max_age{900};
  int max_concurrent_starts = 1;          // refills with nobody waiting
  int max_concurrent_starts_waiting = 2;  // while creates wait for a standby
  int max_waiting = 32;                   // queued creates; past it, refuse
  std::chrono::seconds demand_window{30};
  std::chrono::milliseconds ready_timeout{45000};
  MachineSpec spec;  // every standby's limits; ids are made by the pool
};

class StandbyPool {
 public:
  StandbyPool(boost::asio::io_context& io, MachineBackend& backend, MachineReaper& reaper, StandbyPoolConfig config);
  ~StandbyPool();

  void start();
  using Handout = std::function<void(Result<ReadyBrowser>)>;

  // A ready standby, or nothing (the caller starts cold). Counts as demand.
  std::optional<ReadyBrowser> take();
  // A ready standby at once (take()'s fast path), else queues `done` for the
  // next standby that becomes ready (FIFO). Fails at once when the queue is
  // full or the pool stopped; a failed start fails the oldest waiter with its
  // cause. The returned function withdraws a queued wait (done is not called).
  // `waited` tells the caller which of the two happened.
  std::function<void()> acquire(Handout done, bool& waited);
  // Disposes every standby; no refills afterwards.
  void stop();

  int ready_count() const { return static_cast<int>(ready_.size()); }
  int starting_count() const { return starting_; }
  int waiting_count() const { return static_cast<int>(waiters_.size()); }
  // No standby to give and max_waiting creates queued: a create now is
  // refused with queue_full_error() ("capacity", 503 with Retry-After).
  bool queue_full() const { return ready_.empty() && waiting_count() >= config_.max_waiting; }
  Error queue_full_error() const;
  int target_size() const;
  const StandbyPoolConfig& config() const { return config_; }

  // Makes machine ids: "w-" + random hex.
  static std::string new_machine_id();

 private:
  struct Standby {
    explicit Standby(boost::asio::io_context& io) : age_timer(io) {}
    ReadyBrowser browser;
    boost::asio::steady_timer age_timer;
    bool gone = false;
  };
  using Entry = std::list<std::shared_ptr<Standby>>::iterator;

  struct Waiter {
    std::uint64_t id;
    Handout done;
  };
  struct Launching {
    std::function<void()> cancel;
    Machine* machine = nullptr;  // valid while the launch is in flight
  };

  void refill();
  void schedule_refill();
  void adopt(ReadyBrowser browser);
  void hand_out(ReadyBrowser browser);
  void fail_oldest_waiter(const std::string& why);
  void prioritise_launches();
  void retire(const std::shared_ptr<Standby>& s, const std::string& why);
  void note_demand();

  boost::asio::io_context& io_;
  MachineBackend& backend_;
  MachineReaper& reaper_;
  StandbyPoolConfig config_;
  std::list<std::shared_ptr<Standby>> ready_;
  int starting_ = 0;
  // Launches in flight, so stop() leaves none half-started and waiters can
  // raise their CPU priority.
  std::map<std::string, Launching> launching_;
  std::deque<Waiter> waiters_;
  std::uint64_t next_waiter_id_ = 1;
  int consecutive_failures_ = 0;
  boost::asio::steady_timer backoff_timer_;
  boost::asio::steady_timer refill_timer_;
  bool refill_deferred_ = false;
  static constexpr std::chrono::milliseconds kRefillDelayAfterTake{250};
  std::deque<SteadyClock::time_point> demand_;
  double mean_ready_ms_ = 1000;
  bool running_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kindling::node
