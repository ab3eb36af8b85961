#include "agent/agent.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "agent/agent_log.hpp"
#include "agent/listener.hpp"
#include "agent/machine_init.hpp"

namespace kindling::agent {

namespace ap = agent_protocol;

namespace {

// epoll tokens: (id << 4) | tag. Fixed parts of the agent use id 0.
enum Tag : std::uint64_t {
  kListener = 0,
  kSignals,
  kBrowserOutput,
  kBrowserProbe,
  kPending,
  kControl,
  kRelayHost,
  kRelayBrowser,
  kIdentity,
  kProxyFailures,
  kCloser,
};
constexpr std::uint64_t token(std::uint64_t id, Tag tag) { return (id << 4) | tag; }

constexpr std::size_t kPreambleReadBytes = 4096;
constexpr std::size_t kControlReadBytes = 64 * 1024;

void send_best_effort(int fd, std::string_view bytes) {
  ssize_t ignored = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)ignored;
}

}  // namespace

Agent::Agent(AgentConfig config, Clock::time_point started_at)
    : config_(std::move(config)), started_at_(started_at) {}

Agent::~Agent() = default;

Status Agent::setup() {
  // Signals arrive through a signalfd so the loop handles them like any fd.
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, sig);
  if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return make_error(std::string("sigprocmask: ") + strerror(errno));
  ::signal(SIGPIPE, SIG_IGN);
  signals_.reset(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signals_.valid()) return make_error(std::string("signalfd: ") + strerror(errno));
  KINDLING_TRY(poller, Poller::create());
  poller_ = std::move(poller);
  poller_.add(signals_.get(), EPOLLIN, token(0, kSignals));
  init_machine_if_pid1();
  KINDLING_TRY(listener, listen_on(config_.listen));
  listener_ = std::move(listener);
  poller_.add(listener_.get(), EPOLLIN, token(0, kListener));
  log_info("listening on " + config_.listen.to_string());
  // After the signal mask above: the proxy's threads inherit it.
  auto proxy = ForwardProxy::start([failures = proxy_failures_](const std::string& m) { failures->push(m); });
  if (!proxy) return proxy.error();
  proxy_ = std::move(proxy.value());
  config_.proxy_port = proxy_->port();
  poller_.add(proxy_failures_->fd(), EPOLLIN, token(0, kProxyFailures));
  log_info("forward proxy on 127.0.0.1:" + std::to_string(proxy_->port()));
  return ok_status();
}

void Agent::init_machine_if_pid1() {
  if (::getpid() != 1) {
    // Not PID 1 (tests, debugging): orphans of Chromium still come back to
    // us, so shutdown can wait for every one of them.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    log_info("not PID 1: leaving mounts and network as they are");
    return;
  }
  MachineInitReport report = init_machine(config_.user_data_dir);
  for (const auto& step : report.mounts)
    log_debug("mount " + step.target + ": " + (step.skipped ? "already mounted" : step.failed ? step.detail : "mounted"));
  for (const auto& warning : report.warnings) log_warn(warning + " (optional, continuing)");
  for (const auto& error : report.errors) {
    log_error(error);
    publish(ap::AgentError{"machine setup: " + error});
    machine_ready_ = false;
  }
}

int Agent::run() {
  if (auto status = setup(); !status) {
    log_error(status.error().message);
    return 1;
  }
  browser_ = std::make_unique<BrowserSupervisor>(
      config_, started_at_, [this](const ap::AgentMessage& m) { publish(m); }, poller_, token(0, kBrowserOutput),
      token(0, kBrowserProbe));
  if (machine_ready_) {
    if (auto started = browser_->start(); !started) {
      log_error(started.error().message);
      publish(ap::AgentError{started.error().message});
    }
  } else {
    log_error("not starting Chromium: machine setup failed");
  }

  epoll_event events[64];
  for (;;) {
    int n = poller_.wait(events, 64, tick_interval_ms());
    for (int i = 0; i < n; ++i) dispatch(events[i]);
    Clock::time_point now = Clock::now();
    on_tick(now);
    if (shutting_down_) {
      reap_children();
      if (!have_children_) break;
      if (now >= shutdown_deadline_) {
        if (killed_) {
          log_error("processes survived SIGKILL; exiting anyway");
          break;
        }
        log_warn("Chromium ignored SIGTERM for 2 s: SIGKILL");
        browser_->signal_browser(SIGKILL, "agent shutdown");
        signal_descendants(SIGKILL);
        killed_ = true;
        shutdown_deadline_ = now + kShutdownGrace;
      }
    }
  }
  if (control_) flush_control();
  remove_listen_path(config_.listen);
  log_info("shut down");
  if (::getpid() == 1 && config_.listen.kind == ListenAddress::Kind::kVsock) {
    // PID 1 of a VM must not exit (the kernel would panic): a reboot is how
    // a microVM ends; Firecracker-style VMMs stop on the reset it causes.
    ::sync();
    ::reboot(RB_AUTOBOOT);
  }
  return 0;
}

int Agent::tick_interval_ms() const {
  if (browser_ && browser_->wants_fast_ticks()) return 10;  // DevToolsActivePort appears within ~1 s
  if (identity_ && identity_->wants_ticks()) return 50;
  if (shutting_down_ || !pending_.empty()) return 50;
  return -1;
}

void Agent::dispatch(const epoll_event& event) {
  std::uint64_t id = event.data.u64 >> 4;
  switch (static_cast<Tag>(event.data.u64 & 0xf)) {
    case kListener: return on_accept();
    case kSignals: return on_signal();
    case kBrowserOutput: return browser_->on_output();
    case kBrowserProbe: return browser_->on_probe();
    case kPending: return on_pending(id);
    case kControl:
      if (control_ && control_->id == id) on_control(event.events);
      return;
    case kRelayHost: return on_relay(id, CdpRelay::Side::kHost, event.events);
    case kRelayBrowser: return on_relay(id, CdpRelay::Side::kBrowser, event.events);
    case kIdentity:
      if (identity_) identity_->on_events(event.events);
      return;
    case kProxyFailures: return on_proxy_failures();
    case kCloser:
      if (closer_)
        if (auto st = closer_->on_events(event.events); !st) {
          log_warn(st.error().message + "; sending SIGTERM instead");
          browser_->signal_browser(SIGTERM, "closed by the host (SIGTERM after Browser.close failed)");
        }
      return;
  }
}

void Agent::on_proxy_failures() {
  for (auto& message : proxy_failures_->drain()) {
    log_warn("forward proxy: " + message);
    send_control(ap::ProxyFailed{message});  // not recorded: an event, not state
  }
}

void Agent::on_signal() {
  signalfd_siginfo info;
  while (::read(signals_.get(), &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
    if (info.ssi_signo == SIGCHLD) continue;  // reaped below, all at once
    begin_shutdown(std::string("signal ") + strsignal(static_cast<int>(info.ssi_signo)));
  }
  reap_children();
}

void Agent::reap_children() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      if (!browser_ || !browser_->on_child_exit(pid, status)) log_debug("reaped process " + std::to_string(pid));
      continue;
    }
    if (pid < 0 && errno == EINTR) continue;
    have_children_ = pid == 0;
    return;
  }
}

void Agent::on_accept() {
  for (;;) {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) log_warn(std::string("accept: ") + strerror(errno));
      return;
    }
    UniqueFd conn(fd);
    if (shutting_down_) {
      refuse(std::move(conn), "shutting-down");
      continue;
    }
    if (pending_.size() >= kMaxPendingConnections) {
      refuse(std::move(conn), "busy");
      continue;
    }
    std::uint64_t id = next_id_++;
    poller_.add(conn.get(), EPOLLIN, token(id, kPending));
    pending_.emplace(id, PendingConnection{std::move(conn), {}, Clock::now() + kPreambleTimeout});
  }
}

void Agent::refuse(UniqueFd fd, const std::string& why) {
  log_info("refused a connection: " + why);
  send_best_effort(fd.get(), "ERR " + why + "\n");
}

void Agent::on_pending(std::uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  char buf[kPreambleReadBytes];
  ssize_t n = ::recv(it->second.fd.get(), buf, sizeof(buf), 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  std::optional<Result<PreambleReader::Preamble>> outcome;
  if (n > 0) outcome = it->second.reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
  if (n > 0 && !outcome) return;
  UniqueFd fd = std::move(it->second.fd);
  poller_.remove(fd.get());
  pending_.erase(it);
  if (n <= 0) return;  // closed before saying what it is
  if (!outcome->ok()) return refuse(std::move(fd), outcome->error().message);
  auto preamble = std::move(*outcome).value();
  if (preamble.kind == ap::ConnectionKind::kControl) return start_control(std::move(fd), std::move(preamble.leftover));
  start_relay(std::move(fd), std::move(preamble.leftover));
}

// ---- control connection ----

void Agent::start_control(UniqueFd fd, std::string leftover) {
  // One control connection at a time: the newest is the host's current view.
  if (control_) {
    send_control(ap::AgentError{"replaced by a newer control connection"});
    close_control("replaced by a newer control connection");
  }
  control_.emplace();
  control_->id = next_id_++;
  control_->fd = std::move(fd);
  poller_.add(control_->fd.get(), EPOLLIN, token(control_->id, kControl));
  log_info("control client connected");
  send_control(ap::Hello{ap::kVersion, kAgentVersion});
  // Replay what already happened, so a reconnecting host misses nothing.
  for (const auto& message : recorded_) {
    if (!control_) return;
    send_control(message);
  }
  if (control_ && !leftover.empty()) {
    control_->inbox.feed(leftover);
    on_control(0);
  }
}

void Agent::close_control(const std::string& reason) {
  if (!control_) return;
  log_info("control client closed: " + reason);
  poller_.remove(control_->fd.get());
  control_.reset();
}

void Agent::send_control(const ap::AgentMessage& message) {
  if (!control_) return;
  control_->outbox += ap::encode_frame(ap::to_json(message));
  if (control_->outbox.size() - control_->outbox_sent > kMaxControlOutputBytes)
    return close_control("control client is not reading its messages");
  flush_control();
}

void Agent::flush_control() {
  ControlClient& c = *control_;
  while (c.outbox_sent < c.outbox.size()) {
    ssize_t n = ::send(c.fd.get(), c.outbox.data() + c.outbox_sent, c.outbox.size() - c.outbox_sent,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) return close_control(std::string("write: ") + strerror(errno));
    c.outbox_sent += static_cast<std::size_t>(n);
  }
  if (c.outbox_sent == c.outbox.size()) {
    c.outbox.clear();
    c.outbox_sent = 0;
  }
  bool want_write = !c.outbox.empty();
  if (want_write != c.writable_wanted) {
    c.writable_wanted = want_write;
    poller_.modify(c.fd.get(), EPOLLIN | (want_write ? EPOLLOUT : 0u), token(c.id, kControl));
  }
}

void Agent::on_control(std::uint32_t events) {
  const std::uint64_t id = control_->id;
  auto still_open = [&] { return control_ && control_->id == id; };
  if (events & EPOLLOUT) flush_control();
  if (!still_open()) return;
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    char buf[kControlReadBytes];
    ssize_t n = ::recv(control_->fd.get(), buf, sizeof(buf), 0);
    if (n == 0) return close_control("host closed it");
    if (n < 0 && errno != EAGAIN && errno != EINTR) return close_control(std::string("read: ") + strerror(errno));
    if (n > 0) control_->inbox.feed(std::string_view(buf, static_cast<std::size_t>(n)));
  }
  while (still_open()) {
    auto item = control_->inbox.next();
    if (!item) return;
    switch (item->kind) {
      case ControlInbox::Item::Kind::kMessage:
        handle_host_message(item->message);
        break;
      case ControlInbox::Item::Kind::kInvalid:
        log_warn("invalid control message: " + item->error);
        send_control(ap::AgentError{"invalid message: " + item->error});
        if (still_open() && ++control_->invalid_messages > kMaxInvalidControlMessages)
          close_control("too many invalid messages");
        break;
      case ControlInbox::Item::Kind::kBroken:
        log_warn("broken control stream: " + item->error);
        send_control(ap::AgentError{"closing control connection: " + item->error});
        close_control(item->error);
        return;
    }
  }
}

void Agent::handle_host_message(const ap::HostMessage& message) {
  if (const auto* ping = std::get_if<ap::Ping>(&message)) return send_control(ap::Pong{ping->id});
  if (std::holds_alternative<ap::Shutdown>(message)) return begin_shutdown("the host asked to shut down");
  if (std::holds_alternative<ap::CloseBrowser>(message)) return close_browser();
  if (const auto* apply = std::get_if<ap::ApplyIdentity>(&message)) {
    if (shutting_down_ || !browser_ || browser_->state() != BrowserSupervisor::State::kReady)
      return send_control(ap::IdentityApplied{apply->id, false, "the browser is not ready"});
    if (!identity_)
      identity_ = std::make_unique<IdentityApplier>(poller_, token(0, kIdentity),
                                                    [this](const ap::IdentityApplied& a) { send_control(a); });
    identity_->apply(apply->id, apply->identity, browser_->debugging_port(), browser_->browser_info().websocket_path,
                     browser_->browser_info().user_agent);
  }
  if (const auto* set = std::get_if<ap::SetProxy>(&message)) {
    // Tunnels already open keep their route; every request from now on
    // (the session's first included) takes the new one.
    proxy_->set_upstream(set->proxy);
    log_info("forward proxy: upstream " + set->proxy.server() + (set->proxy.username.empty() ? "" : " (with credentials)"));
    return send_control(ap::ProxySet{set->id, true, {}});
  }
}

void Agent::close_browser() {
  if (shutting_down_ || !browser_ || browser_->state() != BrowserSupervisor::State::kReady || !browser_->alive())
    return send_control(ap::AgentError{"close_browser: the browser is not running"});
  log_info("closing the browser (Browser.close) at the host's request");
  if (!closer_) closer_ = std::make_unique<BrowserCloser>(poller_, token(0, kCloser));
  if (auto st = closer_->start(browser_->debugging_port(), browser_->browser_info().websocket_path); !st) {
    log_warn(st.error().message + "; sending SIGTERM instead");
    browser_->signal_browser(SIGTERM, "closed by the host (SIGTERM: no DevTools connection)");
  }
}

void Agent::publish(const ap::AgentMessage& message) {
  if (recorded_.size() < kMaxRecordedEvents) recorded_.push_back(message);
  send_control(message);
}

// ---- CDP relays ----

void Agent::start_relay(UniqueFd fd, std::string leftover) {
  if (shutting_down_) return refuse(std::move(fd), "shutting-down");
  if (!browser_ || browser_->state() != BrowserSupervisor::State::kReady)
    return refuse(std::move(fd), browser_ && browser_->state() == BrowserSupervisor::State::kExited
                                     ? "browser-exited"
                                     : "not-ready");
  if (relays_.size() >= kMaxRelays) return refuse(std::move(fd), "busy");
  UniqueFd browser(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(browser_->debugging_port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!browser.valid() ||
      (::connect(browser.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 && errno != EINPROGRESS)) {
    log_warn(std::string("connect to Chromium: ") + strerror(errno));
    return refuse(std::move(fd), "browser-unreachable");
  }
  std::uint64_t id = next_id_++;
  auto relay = std::make_unique<CdpRelay>(std::move(fd), std::move(browser), leftover);
  std::uint32_t host_events = relay->wanted_events(CdpRelay::Side::kHost);
  std::uint32_t browser_events = relay->wanted_events(CdpRelay::Side::kBrowser);
  poller_.add(relay->fd(CdpRelay::Side::kHost), host_events, token(id, kRelayHost));
  poller_.add(relay->fd(CdpRelay::Side::kBrowser), browser_events, token(id, kRelayBrowser));
  relay_events_[id] = {host_events, browser_events};
  relays_.emplace(id, std::move(relay));
  log_debug("cdp relay " + std::to_string(id) + " opened (" + std::to_string(relays_.size()) + " open)");
}

void Agent::on_relay(std::uint64_t id, CdpRelay::Side side, std::uint32_t events) {
  auto it = relays_.find(id);
  if (it == relays_.end()) return;
  it->second->on_event(side, events);
  sync_relay(id, *it->second);
}

void Agent::sync_relay(std::uint64_t id, CdpRelay& relay) {
  if (relay.finished()) return close_relay(id);
  auto& [host_registered, browser_registered] = relay_events_[id];
  std::uint32_t host_events = relay.wanted_events(CdpRelay::Side::kHost);
  std::uint32_t browser_events = relay.wanted_events(CdpRelay::Side::kBrowser);
  if (host_events != host_registered) {
    poller_.modify(relay.fd(CdpRelay::Side::kHost), host_events, token(id, kRelayHost));
    host_registered = host_events;
  }
  if (browser_events != browser_registered) {
    poller_.modify(relay.fd(CdpRelay::Side::kBrowser), browser_events, token(id, kRelayBrowser));
    browser_registered = browser_events;
  }
}

void Agent::close_relay(std::uint64_t id) {
  auto it = relays_.find(id);
  if (it == relays_.end()) return;
  CdpRelay& relay = *it->second;
  poller_.remove(relay.fd(CdpRelay::Side::kHost));
  poller_.remove(relay.fd(CdpRelay::Side::kBrowser));
  log_debug("cdp relay " + std::to_string(id) + " closed: " + relay.close_reason() + " (" +
            std::to_string(relay.bytes_to_browser()) + " bytes to Chromium, " +
            std::to_string(relay.bytes_to_host()) + " to the host)");
  relays_.erase(it);
  relay_events_.erase(id);
}

// ---- time and shutdown ----

void Agent::on_tick(Clock::time_point now) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now < it->second.deadline) {
      ++it;
      continue;
    }
    UniqueFd fd = std::move(it->second.fd);
    poller_.remove(fd.get());
    it = pending_.erase(it);
    refuse(std::move(fd), "preamble-timeout");
  }
  if (browser_) browser_->tick(now);
  if (identity_) identity_->tick(now);
}

void Agent::begin_shutdown(const std::string& why) {
  if (shutting_down_) return;
  shutting_down_ = true;
  log_info("shutting down: " + why);
  // No new connections: the host learns we are going by connect failing.
  poller_.remove(listener_.get());
  listener_.reset();
  remove_listen_path(config_.listen);
  for (auto& [id, pending] : pending_) poller_.remove(pending.fd.get());
  pending_.clear();
  if (browser_) browser_->signal_browser(SIGTERM, "agent shutdown");
  signal_descendants(SIGTERM);
  shutdown_deadline_ = Clock::now() + kShutdownGrace;
}

void Agent::signal_descendants(int sig) {
  if (::getpid() == 1) {
    ::kill(-1, sig);  // everything in this machine but us
    return;
  }
  // As a subreaper every orphaned descendant is our child: signal children.
  const std::string self = std::to_string(::getpid());
  DIR* proc = ::opendir("/proc");
  if (!proc) return;
  while (dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    std::ifstream stat(std::string("/proc/") + entry->d_name + "/stat");
    std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // "pid (comm) state ppid ...": comm may hold spaces and parens, so parse after the last ')'.
    auto close_paren = content.rfind(')');
    if (close_paren == std::string::npos) continue;
    char state = 0;
    char ppid[32] = {};
    if (std::sscanf(content.c_str() + close_paren + 1, " %c %31s", &state, ppid) == 2 && self == ppid)
      ::kill(std::atoi(entry->d_name), sig);
  }
  ::closedir(proc);
}

}  // namespace kindling::agent
