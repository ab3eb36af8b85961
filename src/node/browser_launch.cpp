#include "node/browser_launch.hpp"

#include <boost/asio/steady_timer.hpp>
#include <unistd.h>

#include "common/log.hpp"

namespace kindling::node {

namespace asio = boost::asio;
namespace ap = agent_protocol;

namespace {

// One launch in flight: whichever of ready, failure, machine exit or the
// deadline comes first decides it; the rest are ignored.
struct Launch : std::enable_shared_from_this<Launch> {
  Launch(asio::io_context& io, MachineReaper& reaper) : reaper(reaper), timer(io) {}
  MachineReaper& reaper;
  asio::steady_timer timer;
  ReadyBrowser browser;
  std::function<void(Result<ReadyBrowser>)> done;
  bool decided = false;

  void fail(const std::string& why) {
    if (decided) return;
    decided = true;
    timer.cancel();
    if (browser.control) browser.control->close();
    if (browser.exit_watch) {
      boost::system::error_code ignored;
      browser.exit_watch->cancel(ignored);
    }
    if (browser.machine) reaper.dispose(std::move(browser.machine));
    auto cb = std::move(done);
    cb(make_error(why, "start_failed"));
  }

  void succeed(const ap::Ready& ready) {
    if (decided) return;
    decided = true;
    timer.cancel();
    boost::system::error_code ignored;
    browser.exit_watch->cancel(ignored);
    browser.ready = ready;
    browser.ready_ms = millis_between(browser.launched_at, SteadyClock::now());
    browser.control->set_events({});  // the new owner binds its own
    auto cb = std::move(done);
    cb(std::move(browser));
  }
};

std::string describe_exit(const ap::BrowserExited& e) {
  if (e.signal) return "killed by signal " + std::to_string(*e.signal);
  if (e.exit_code) return "exited with status " + std::to_string(*e.exit_code);
  return e.reason.empty() ? "exited" : e.reason;
}

}  // namespace

std::function<void()> launch_browser(asio::io_context& io, MachineBackend& backend, MachineReaper& reaper, const MachineSpec& spec,
                    std::chrono::milliseconds ready_timeout, std::function<void(Result<ReadyBrowser>)> done,
                    std::function<void(Machine&, double)> on_machine) {
  auto launch = std::make_shared<Launch>(io, reaper);
  launch->done = std::move(done);
  launch->browser.launched_at = SteadyClock::now();

  std::function<void()> cancel = [weak = std::weak_ptr<Launch>(launch)] {
    if (auto l = weak.lock()) l->fail("start cancelled");
  };
  auto machine = backend.start(spec);
  if (!machine) {
    launch->fail("machine did not start: " + machine.error().message);
    return cancel;
  }
  launch->browser.machine = std::shared_ptr<Machine>(std::move(machine).value());
  launch->browser.machine_started_ms = millis_between(launch->browser.launched_at, SteadyClock::now());
  if (on_machine) on_machine(*launch->browser.machine, launch->browser.machine_started_ms);

  auto watch = make_exit_watch(io, launch->browser.machine->pid());
  if (!watch) {
    launch->fail("cannot watch the machine's process: " + watch.error().message);
    return cancel;
  }
  launch->browser.exit_watch = std::move(watch).value();
  std::weak_ptr<Launch> weak = launch;
  await_exit(launch->browser.exit_watch, [weak](boost::system::error_code ec) {
    if (auto l = weak.lock(); l && !ec) l->fail("machine exited during start");
  });

  AgentControl::Events events;
  events.on_ready = [weak](const ap::Ready& ready) {
    if (auto l = weak.lock()) l->succeed(ready);
  };
  events.on_browser_exited = [weak](const ap::BrowserExited& e) {
    if (auto l = weak.lock()) l->fail("browser " + describe_exit(e) + " during start");
  };
  events.on_failure = [weak](const std::string& why) {
    if (auto l = weak.lock()) l->fail(why);
  };
  launch->browser.control = AgentControl::open(io, launch->browser.machine, std::move(events), ready_timeout);

  launch->timer.expires_after(ready_timeout);
  launch->timer.async_wait([launch, ready_timeout](boost::system::error_code ec) {
    if (ec) return;
    launch->fail("browser did not become ready within " +
                 std::to_string(std::chrono::duration_cast<std::chrono::seconds>(ready_timeout).count()) + " s");
  });
  return cancel;
}

}  // namespace kindling::node
