// Chromium's life inside the machine: launch, readiness, the one retry
// without sandbox when the kernel refuses it, death, and termination. It owns
// no event loop; the agent's loop feeds it readiness, ticks and exits of
// child processes, and it reports what the host must hear through `publish`.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "agent/agent_config.hpp"
#include "agent/cdp_version_probe.hpp"
#include "agent/chromium_process.hpp"
#include "agent/poller.hpp"
#include "common/agent_protocol.hpp"

namespace kindling::agent {

using Clock = std::chrono::steady_clock;

inline constexpr auto kStartupTimeout = std::chrono::seconds(30);
inline constexpr std::size_t kOutputTailBytes = 16 * 1024;

class BrowserSupervisor {
 public:
  enum class State { kIdle, kStarting, kReady, kExited };
  using Publish = std::function<void(const agent_protocol::AgentMessage&)>;

  // The supervisor registers its own fds (Chromium's output pipe, the
  // readiness probe) with `poller` under the two tokens given.
  BrowserSupervisor(const AgentConfig& config, Clock::time_point agent_start, Publish publish, Poller& poller,
                    std::uint64_t output_token, std::uint64_t probe_token);

  // Creates the profile and launches Chromium with its sandbox on.
  Status start();

  State state() const { return state_; }
  bool alive() const { return pid_ > 0; }
  std::uint16_t debugging_port() const { return endpoint_ ? endpoint_->port : 0; }
  // What /json/version said once ready.
  const agent_protocol::BrowserInfo& browser_info() const { return browser_info_; }
  // How soon tick() wants to run again while starting.
  bool wants_fast_ticks() const { return state_ == State::kStarting; }

  void on_output();
  void on_probe();
  void tick(Clock::time_point now);
  // Returns true if `pid` was Chromium's browser process.
  bool on_child_exit(pid_t pid, int wait_status);
  // Signals Chromium's whole process group (it is the group leader).
  void signal_browser(int sig, const std::string& why);

 private:
  Status launch(bool sandbox);
  int output_fd() const { return process_.stderr_pipe.get(); }
  void close_output();
  void set_probe(std::optional<CdpVersionProbe> probe);
  void fail_startup(const std::string& message);

  const AgentConfig& config_;
  Clock::time_point agent_start_;
  Publish publish_;
  Poller& poller_;
  std::uint64_t output_token_, probe_token_;
  State state_ = State::kIdle;
  bool sandbox_ = true;
  std::string sandbox_note_;
  pid_t pid_ = -1;
  pid_t pgid_ = -1;
  ChromiumProcess process_;
  std::string output_tail_;
  std::string partial_line_;
  Clock::time_point launched_at_{};
  double launch_ms_ = 0;
  std::optional<DevToolsEndpoint> endpoint_;
  agent_protocol::BrowserInfo browser_info_;
  std::optional<CdpVersionProbe> probe_;
  Clock::time_point next_probe_at_{};
  std::string last_probe_error_;
  std::string kill_reason_;  // set when the agent itself ends Chromium
};

}  // namespace kindling::agent
