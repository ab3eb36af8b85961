// Host side of a machine's agent: the control channel (events from the agent)
// and CDP streams (raw relays to Chromium). Everything the agent sends is
// untrusted and validated by agent_protocol before it reaches a callback.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/agent_protocol.hpp"
#include "common/result.hpp"
#include "node/machine.hpp"

namespace kindling::node {

using AgentSocket = boost::asio::local::stream_protocol::socket;

// The control channel. Callbacks run on the io_context; at most one of
// on_failure fires, after which the link is closed.
class AgentControl : public std::enable_shared_from_this<AgentControl> {
 public:
  struct Events {
    std::function<void(const agent_protocol::Ready&)> on_ready;
    std::function<void(const agent_protocol::BrowserExited&)> on_browser_exited;
    std::function<void(const std::string& why)> on_failure;
    // The forward proxy could not use the session's upstream (the agent's
    // sentence, untrusted: the owner bounds it before showing it).
    std::function<void(const std::string& message)> on_proxy_failed;
  };

  // Connects to the agent, retrying while its listener is not up yet, until
  // `connect_deadline`.
  static std::shared_ptr<AgentControl> open(boost::asio::io_context& io, std::shared_ptr<Machine> machine,
                                            Events events, std::chrono::milliseconds connect_deadline);

  // Hands the channel to a new owner (standby pool -> session).
  void set_events(Events events) { events_ = std::move(events); }

  void send(const agent_protocol::HostMessage& message);

  // Sends apply_identity and calls `done` with the agent's answer: ok, an
  // error with code "bad_request" when Chromium refused a value, or
  // "unavailable" when the agent could not apply it or did not answer within
  // `timeout`. If the link fails or closes first, `done` is never called (the
  // owner hears of it through on_failure).
  void apply_identity(const BrowserIdentity& identity, std::chrono::milliseconds timeout,
                      std::function<void(Status)> done);
  // Sends set_proxy and calls `done` with the agent's answer ("unavailable"
  // on a refusal or no answer within `timeout`); as apply_identity otherwise.
  void set_proxy(const UpstreamProxy& proxy, std::chrono::milliseconds timeout, std::function<void(Status)> done);
  // Stops reading and closes the socket; no callback fires afterwards.
  void close();

 private:
  AgentControl(boost::asio::io_context& io, std::shared_ptr<Machine> machine, Events events);
  void try_connect();
  void start_reading();
  void write_next();
  void fail(const std::string& why);
  void on_identity_applied(const agent_protocol::IdentityApplied& answer);
  // Registers a request answered by id, failing with `timeout_message` if
  // no answer arrives in time; returns the id to send.
  std::uint64_t start_request(std::chrono::milliseconds timeout, std::string timeout_message,
                              std::function<void(Status)> done);
  void finish_request(std::uint64_t id, Status result);

  struct PendingRequest {
    std::function<void(Status)> done;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  boost::asio::io_context& io_;
  std::weak_ptr<Machine> machine_;
  Events events_;
  AgentSocket socket_;
  boost::asio::steady_timer retry_timer_;
  std::chrono::steady_clock::time_point deadline_;
  agent_protocol::FrameDecoder decoder_;
  std::array<char, 16 * 1024> read_buffer_{};
  std::deque<std::string> outbox_;
  bool writing_ = false;
  bool closed_ = false;
  bool hello_seen_ = false;
  std::string last_connect_error_;
  std::uint64_t next_request_id_ = 1;
  std::map<std::uint64_t, PendingRequest> pending_;
};

// Opens a CDP stream: a connection on which the agent has answered "OK" and
// which now carries raw bytes to and from Chromium's debugging port.
void open_cdp_stream(boost::asio::io_context& io, Machine& machine,
                     std::function<void(Result<std::unique_ptr<AgentSocket>>)> done);

}  // namespace kindling::node
