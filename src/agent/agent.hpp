// kindling-agent's event loop: one thread, one epoll. It accepts the host's
// connections, reads their preambles, serves the control connection, relays
// CDP connections, reaps every child (it is PID 1), and runs shutdown.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent_config.hpp"
#include "agent/browser_closer.hpp"
#include "agent/browser_supervisor.hpp"
#include "agent/cdp_relay.hpp"
#include "agent/control_channel.hpp"
#include "agent/forward_proxy.hpp"
#include "agent/identity_applier.hpp"
#include "agent/poller.hpp"
#include "agent/proxy_failures.hpp"
#include "common/agent_protocol.hpp"
#include "common/unique_fd.hpp"

namespace kindling::agent {

// Limits on what the host can make the agent hold.
inline constexpr std::size_t kMaxPendingConnections = 64;
inline constexpr std::size_t kMaxRelays = 512;
inline constexpr auto kPreambleTimeout = std::chrono::seconds(5);
inline constexpr std::size_t kMaxControlOutputBytes = 1 << 20;
inline constexpr int kMaxInvalidControlMessages = 32;
inline constexpr auto kShutdownGrace = std::chrono::seconds(2);
// Events replayed to a new control client: ready, errors, exit. Bounded.
inline constexpr std::size_t kMaxRecordedEvents = 32;

class Agent {
 public:
  Agent(AgentConfig config, Clock::time_point started_at);
  ~Agent();
  // Runs until shut down; returns the process exit code.
  int run();

 private:
  struct PendingConnection {
    UniqueFd fd;
    PreambleReader reader;
    Clock::time_point deadline;
  };
  struct ControlClient {
    std::uint64_t id = 0;
    UniqueFd fd;
    ControlInbox inbox;
    std::string outbox;
    std::size_t outbox_sent = 0;
    int invalid_messages = 0;
    bool writable_wanted = false;
  };

  Status setup();
  void init_machine_if_pid1();
  void dispatch(const epoll_event& event);
  void on_accept();
  void on_signal();
  void on_pending(std::uint64_t id);
  void on_control(std::uint32_t events);
  void on_relay(std::uint64_t id, CdpRelay::Side side, std::uint32_t events);
  void on_tick(Clock::time_point now);
  void on_proxy_failures();
  void reap_children();

  void start_control(UniqueFd fd, std::string leftover);
  void start_relay(UniqueFd fd, std::string leftover);
  void refuse(UniqueFd fd, const std::string& why);
  void close_control(const std::string& reason);
  void send_control(const agent_protocol::AgentMessage& message);
  void flush_control();
  void handle_host_message(const agent_protocol::HostMessage& message);
  void close_browser();
  void publish(const agent_protocol::AgentMessage& message);
  void sync_relay(std::uint64_t id, CdpRelay& relay);
  void close_relay(std::uint64_t id);

  void begin_shutdown(const std::string& why);
  void signal_descendants(int sig);
  int tick_interval_ms() const;

  AgentConfig config_;
  Clock::time_point started_at_;
  Poller poller_;
  UniqueFd listener_;
  UniqueFd signals_;
  std::unique_ptr<BrowserSupervisor> browser_;
  std::unique_ptr<IdentityApplier> identity_;
  std::unique_ptr<BrowserCloser> closer_;  // after the host's close_browser
  // Outlives the agent in the proxy's detached threads: shared.
  std::shared_ptr<ProxyFailureQueue> proxy_failures_ = std::make_shared<ProxyFailureQueue>();
  std::unique_ptr<ForwardProxy> proxy_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, PendingConnection> pending_;
  std::optional<ControlClient> control_;
  std::map<std::uint64_t, std::unique_ptr<CdpRelay>> relays_;
  std::map<std::uint64_t, std::pair<std::uint32_t, std::uint32_t>> relay_events_;  // registered masks
  std::vector<agent_protocol::AgentMessage> recorded_;
  bool machine_ready_ = true;  // false when a required mount failed
  bool shutting_down_ = false;
  bool killed_ = false;
  bool have_children_ = true;
  Clock::time_point shutdown_deadline_{};
};

}  // namespace kindling::agent
