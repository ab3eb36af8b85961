// The warm pool: standby machines whose Chromium already answers CDP and has
// no identity yet. A create takes one (milliseconds) instead of launching one
// (about a second). The pool refills in the background, one start at a time
// by default so refills never starve running sessions of CPU, sizes itself
// from the recent create rate between a floor and a ceiling, and replaces
// standbys that grow old or whose browser died.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
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
  int max_concurrent_starts = 1;
  std::chrono::seconds demand_window{30};
  std::chrono::milliseconds ready_timeout{45000};
  MachineSpec spec;  // every standby's limits; ids are made by the pool
};

class StandbyPool {
 public:
  StandbyPool(boost::asio::io_context& io, MachineBackend& backend, MachineReaper& reaper, StandbyPoolConfig config);
  ~StandbyPool();

  void start();
  // A ready standby, or nothing (the caller starts cold). Counts as demand.
  std::optional<ReadyBrowser> take();
  // Disposes every standby; no refills afterwards.
  void stop();

  int ready_count() const { return static_cast<int>(ready_.size()); }
  int starting_count() const { return starting_; }
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

  void refill();
  void adopt(ReadyBrowser browser);
  void retire(const std::shared_ptr<Standby>& s, const std::string& why);
  void note_demand();

  boost::asio::io_context& io_;
  MachineBackend& backend_;
  MachineReaper& reaper_;
  StandbyPoolConfig config_;
  std::list<std::shared_ptr<Standby>> ready_;
  int starting_ = 0;
  // Cancels for launches in flight, so stop() leaves none half-started.
  std::map<std::string, std::function<void()>> launching_;
  int consecutive_failures_ = 0;
  boost::asio::steady_timer backoff_timer_;
  std::deque<SteadyClock::time_point> demand_;
  double mean_ready_ms_ = 1000;
  bool running_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kindling::node
