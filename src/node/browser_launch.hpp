// A cold start: a new machine whose Chromium is launched and answering CDP.
// The standby pool fills itself with these; a session takes one, or makes
// one when the pool is empty.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <chrono>
#include <functional>
#include <memory>

#include "common/agent_protocol.hpp"
#include "common/clock.hpp"
#include "common/result.hpp"
#include "node/agent_link.hpp"
#include "node/exit_watch.hpp"
#include "node/machine.hpp"
#include "node/machine_reaper.hpp"

namespace kindling::node {

// A machine with a CDP-ready Chromium and no identity. Whoever holds it must
// rebind the control channel's events and watch exit_watch.
struct ReadyBrowser {
  std::shared_ptr<Machine> machine;
  std::shared_ptr<AgentControl> control;
  // Readable when the machine's root process ends (a dup of its pidfd).
  ExitWatch exit_watch;
  agent_protocol::Ready ready;
  SteadyClock::time_point launched_at;
  double machine_started_ms = 0;  // launch -> machine running
  double ready_ms = 0;            // launch -> CDP answered
};

// Starts `spec` on `backend` and calls `done` once Chromium answers CDP, or
// with the reason it did not (the machine is then already being disposed).
// `on_machine` runs as soon as the machine process exists (for records, or
// to raise its CPU priority while it starts).
// The returned function cancels the launch (done then gets an error).
std::function<void()> launch_browser(boost::asio::io_context& io, MachineBackend& backend, MachineReaper& reaper,
                    const MachineSpec& spec, std::chrono::milliseconds ready_timeout,
                    std::function<void(Result<ReadyBrowser>)> done,
                    std::function<void(Machine&, double started_ms)> on_machine = {});

}  // namespace kindling::node
