#include "agent/browser_supervisor.hpp"

#include "agent/profile_seed.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/agent_log.hpp"

namespace kindling::agent {

namespace ap = agent_protocol;

namespace {
constexpr auto kProbeRetry = std::chrono::milliseconds(50);

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
}  // namespace

BrowserSupervisor::BrowserSupervisor(const AgentConfig& config, Clock::time_point agent_start, Publish publish,
                                     Poller& poller, std::uint64_t output_token, std::uint64_t probe_token)
    : config_(config),
      agent_start_(agent_start),
      publish_(std::move(publish)),
      poller_(poller),
      output_token_(output_token),
      probe_token_(probe_token) {}

Status BrowserSupervisor::start() {
  auto prepared = prepare_user_data_dir(config_.user_data_dir, config_.browser_uid, config_.browser_gid);
  // The one way a profile is not empty: the host said it holds a saved one.
  if (prepared && !config_.profile_seed_dir.empty())
    prepared = copy_profile_seed(config_.profile_seed_dir, config_.user_data_dir, config_.browser_uid,
                                 config_.browser_gid);
  if (prepared) prepared = prepare_downloads(config_.user_data_dir, config_.browser_uid, config_.browser_gid);
  if (!prepared) {
    state_ = State::kExited;
    return prepared.error();
  }
  auto launched = launch(/*sandbox=*/true);
  if (!launched) state_ = State::kExited;
  return launched;
}

Status BrowserSupervisor::launch(bool sandbox) {
  sandbox_ = sandbox;
  endpoint_.reset();
  set_probe(std::nullopt);
  output_tail_.clear();
  partial_line_.clear();
  // A relaunch reuses the profile; a stale port file would point at the dead browser.
  ::unlink((config_.user_data_dir + "/DevToolsActivePort").c_str());
  auto process = spawn_chromium(config_, sandbox);
  if (!process) return process.error();
  close_output();
  process_ = std::move(process).value();
  poller_.add(output_fd(), EPOLLIN, output_token_);
  pid_ = pgid_ = process_.pid;
  launched_at_ = Clock::now();
  launch_ms_ = ms_between(agent_start_, launched_at_);
  state_ = State::kStarting;
  log_info("chromium started: pid " + std::to_string(pid_) + ", uid " + std::to_string(config_.browser_uid) +
           ", sandbox " + (sandbox ? "on" : "OFF"));
  return ok_status();
}

void BrowserSupervisor::close_output() {
  poller_.remove(output_fd());
  process_.stderr_pipe.reset();
}

void BrowserSupervisor::set_probe(std::optional<CdpVersionProbe> probe) {
  if (probe_) poller_.remove(probe_->fd());
  probe_ = std::move(probe);
  if (probe_) poller_.add(probe_->fd(), probe_->wanted_events(), probe_token_);
}

void BrowserSupervisor::on_output() {
  if (output_fd() < 0) return;
  char buf[16 * 1024];
  for (;;) {
    ssize_t n = ::read(output_fd(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      // EOF: every holder of the pipe (browser, zygotes) is gone.
      close_output();
      return;
    }
    std::string_view chunk(buf, static_cast<std::size_t>(n));
    output_tail_.append(chunk);
    if (output_tail_.size() > kOutputTailBytes) output_tail_.erase(0, output_tail_.size() - kOutputTailBytes);
    if (log_enabled(LogLevel::kDebug)) {
      partial_line_.append(chunk);
      std::size_t nl;
      while ((nl = partial_line_.find('\n')) != std::string::npos) {
        if (nl > 0) log_debug("chromium: " + partial_line_.substr(0, nl));
        partial_line_.erase(0, nl + 1);
      }
      if (partial_line_.size() > 4096) partial_line_.clear();
    }
  }
}

void BrowserSupervisor::on_probe() {
  if (!probe_) return;
  auto outcome = probe_->on_ready();
  if (!outcome) {
    poller_.modify(probe_->fd(), probe_->wanted_events(), probe_token_);
    return;
  }
  set_probe(std::nullopt);
  if (!outcome->ok()) {
    // Early on the port may not accept yet; retry until the startup deadline.
    last_probe_error_ = outcome->error().message;
    next_probe_at_ = Clock::now() + kProbeRetry;
    return;
  }
  state_ = State::kReady;
  ap::Ready ready;
  ready.browser = outcome->value();
  browser_info_ = ready.browser;
  ready.chromium_sandbox = sandbox_;
  ready.sandbox_note = sandbox_note_;
  ready.launch_ms = launch_ms_;
  ready.cdp_ready_ms = ms_between(launched_at_, Clock::now());
  log_info("chromium ready: " + ready.browser.version + " on 127.0.0.1:" + std::to_string(endpoint_->port) +
           " after " + std::to_string(static_cast<int>(ready.cdp_ready_ms)) + " ms");
  publish_(ready);
}

void BrowserSupervisor::tick(Clock::time_point now) {
  if (state_ != State::kStarting) return;
  if (now - launched_at_ > kStartupTimeout) {
    std::string why = "Chromium did not answer CDP within " +
                      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kStartupTimeout).count()) +
                      " s" + (last_probe_error_.empty() ? "" : " (last try: " + last_probe_error_ + ")");
    fail_startup(why);
    return;
  }
  if (!endpoint_) {
    endpoint_ = read_devtools_active_port(config_.user_data_dir);
    if (!endpoint_) return;
    log_debug("DevToolsActivePort: port " + std::to_string(endpoint_->port));
  }
  if (!probe_ && now >= next_probe_at_) {
    auto probe = CdpVersionProbe::start(endpoint_->port);
    if (probe) {
      set_probe(std::move(probe).value());
    } else {
      last_probe_error_ = probe.error().message;
      next_probe_at_ = now + kProbeRetry;
    }
  }
}

void BrowserSupervisor::fail_startup(const std::string& message) {
  log_error(message);
  publish_(ap::AgentError{message});
  set_probe(std::nullopt);
  signal_browser(SIGKILL, "startup failed");
}

void BrowserSupervisor::signal_browser(int sig, const std::string& why) {
  if (pid_ <= 0) return;
  if (kill_reason_.empty()) kill_reason_ = why;
  ::kill(-pgid_, sig);
  ::kill(pid_, sig);
}

bool BrowserSupervisor::on_child_exit(pid_t pid, int wait_status) {
  if (pid != pid_ || pid_ <= 0) return false;
  const bool was_starting = state_ == State::kStarting;
  pid_ = -1;
  set_probe(std::nullopt);
  // What it said last is in the pipe; read it before judging why it died.
  if (output_fd() >= 0) on_output();
  // The rest of its group (zygotes, renderers) has no reason to live on.
  ::kill(-pgid_, SIGKILL);

  if (was_starting && sandbox_ && kill_reason_.empty()) {
    if (auto refusal = find_sandbox_refusal(output_tail_)) {
      sandbox_note_ = "the kernel refused Chromium's sandbox, so it runs with --no-sandbox: " + *refusal;
      log_warn(sandbox_note_);
      close_output();
      auto relaunched = launch(/*sandbox=*/false);
      if (relaunched) return true;
      log_error(relaunched.error().message);
      publish_(ap::AgentError{relaunched.error().message});
    }
  }

  ap::BrowserExited exited;
  if (WIFEXITED(wait_status)) exited.exit_code = WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) exited.signal = WTERMSIG(wait_status);
  std::string how = exited.signal ? "was killed by signal " + std::to_string(*exited.signal)
                                  : "exited with code " + std::to_string(exited.exit_code.value_or(-1));
  if (!kill_reason_.empty()) {
    exited.reason = "Chromium " + how + " (" + kill_reason_ + ")";
  } else if (was_starting) {
    // The last line Chromium printed is the best clue the host can get.
    std::string_view tail(output_tail_);
    while (!tail.empty() && tail.back() == '\n') tail.remove_suffix(1);
    auto nl = tail.rfind('\n');
    std::string last(tail.substr(nl == std::string_view::npos ? 0 : nl + 1));
    if (last.size() > 300) last.resize(300);
    exited.reason = "Chromium " + how + " before CDP was ready" + (last.empty() ? "" : ": " + last);
  } else {
    exited.reason = "Chromium " + how;
  }
  state_ = State::kExited;
  log_warn(exited.reason);
  publish_(exited);
  return true;
}

}  // namespace kindling::agent
