#include "cli/image_browser_check.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/agent_protocol.hpp"
#include "node/sandbox/sandbox_backend.hpp"

namespace kindling::cli {
namespace {

namespace proto = kindling::agent_protocol;
using Clock = std::chrono::steady_clock;

bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string read_some(int fd, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return {};
  pollfd pfd{fd, POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(left)) != 1) return {};
  char buf[8192];
  ssize_t n = ::read(fd, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

Result<std::string> drive(node::SandboxMachine& m, std::ostream& out) {
  const auto started = Clock::now();
  const auto deadline = started + std::chrono::seconds(60);
  Result<UniqueFd> control = make_error("not tried");
  while (Clock::now() < deadline) {
    control = m.connect_agent();
    if (control) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!control) return make_error("agent did not listen: " + control.error().message);
  if (!send_all(control->get(), proto::kControlPreamble)) return make_error("cannot talk to the agent");
  proto::FrameDecoder decoder;
  std::optional<proto::Ready> ready;
  while (!ready) {
    std::string bytes = read_some(control->get(), deadline);
    if (bytes.empty()) return make_error("agent closed the control channel or timed out before Ready");
    if (!decoder.feed(bytes)) return make_error("agent sent an invalid frame");
    while (auto frame = decoder.next()) {
      if (!*frame) return make_error("agent frame: " + frame->error().message);
      auto message = proto::parse_agent_message(frame->value());
      if (!message) return make_error("agent message: " + message.error().message);
      if (auto* r = std::get_if<proto::Ready>(&*message)) ready = *r;
      if (auto* e = std::get_if<proto::AgentError>(&*message)) return make_error("agent error: " + e->message);
      if (auto* x = std::get_if<proto::BrowserExited>(&*message)) return make_error("Chromium exited: " + x->reason);
    }
  }
  out << "  agent Ready after "
      << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()
      << " ms; Chromium sandbox " << (ready->chromium_sandbox ? "on" : "OFF (" + ready->sandbox_note + ")") << "\n";

  auto cdp = m.connect_agent();
  if (!cdp) return make_error("CDP stream: " + cdp.error().message);
  if (!send_all(cdp->get(), proto::kCdpPreamble)) return make_error("CDP stream: cannot send the preamble");
  std::string reply;
  while (reply.find('\n') == std::string::npos) {
    std::string bytes = read_some(cdp->get(), deadline);
    if (bytes.empty()) return make_error("CDP stream: no answer to the preamble");
    reply += bytes;
  }
  if (reply.rfind("OK\n", 0) != 0) return make_error("CDP stream refused: " + reply.substr(0, reply.find('\n')));
  std::string http = reply.substr(3);
  if (!send_all(cdp->get(), "GET /json/version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
    return make_error("CDP stream: cannot send the request");
  auto complete = [&] {
    auto end = http.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    auto at = http.find("Content-Length:");
    if (at == std::string::npos || at > end) return false;
    return http.size() >= end + 4 + std::stoul(http.substr(at + 15));
  };
  while (!complete()) {
    std::string bytes = read_some(cdp->get(), deadline);
    if (bytes.empty()) break;
    http += bytes;
  }
  if (http.rfind("HTTP/1.1 200", 0) != 0 || http.find("webSocketDebuggerUrl") == std::string::npos)
    return make_error("CDP /json/version did not answer 200 with a debugger URL: " + http.substr(0, 200));
  auto body = nlohmann::json::parse(http.substr(http.find("\r\n\r\n") + 4), nullptr, false);
  if (body.is_discarded() || !body.contains("Browser")) return make_error("CDP /json/version: no Browser field");
  return body["Browser"].get<std::string>();
}

}  // namespace

Result<std::string> check_browser_in_sandbox(const node::SandboxConfig& config, std::ostream& out) {
  KINDLING_TRY(backend, node::SandboxBackend::create(config));
  node::MachineSpec spec;
  spec.id = "image-check-" + std::to_string(::getpid());
  spec.memory_limit_bytes = 2ull << 30;
  spec.pids_limit = 1024;
  spec.scratch_bytes = 512ull << 20;
  KINDLING_TRY(machine, backend->start(spec));
  auto* m = static_cast<node::SandboxMachine*>(machine.get());
  auto browser = drive(*m, out);
  std::string log = browser ? std::string() : m->agent_log_tail(2048);
  m->kill();
  m->reap();
  if (!browser) return make_error(browser.error().message + (log.empty() ? "" : "\nagent log:\n" + log));
  return browser;
}

}  // namespace kindling::cli
