// The sandbox with the real kindling-agent and the real Chromium: the agent
// reports Ready with Chromium's own sandbox on, and a CDP stream through the
// agent answers /json/version.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <string>

#include "common/agent_protocol.hpp"
#include "sandbox_test_support.hpp"

namespace kindling::node::testing {
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

// Reads what is available within the deadline; empty on EOF or timeout.
std::string read_some(int fd, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return {};
  pollfd pfd{fd, POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(left)) != 1) return {};
  char buf[8192];
  ssize_t n = ::read(fd, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

class SandboxAgentTest : public SandboxTest {
 protected:
  void SetUp() override {
    auto backend = SandboxBackend::create(test_config(KINDLING_AGENT_PATH));
    ASSERT_TRUE(backend) << backend.error().message;
    backend_ = std::move(backend).value();
  }
};

TEST_F(SandboxAgentTest, RealAgentRunsChromiumWithItsSandboxAndServesCdp) {
  MachineSpec spec = small_spec("chromium");
  spec.memory_limit_bytes = 2ull << 30;
  spec.pids_limit = 1024;
  spec.cpu_limit = 2;
  spec.scratch_bytes = 512ull << 20;
  auto m = start(spec);
  ASSERT_TRUE(m);
  auto deadline = Clock::now() + std::chrono::seconds(60);

  auto control = connect_when_ready(*m);
  ASSERT_TRUE(control) << control.error().message << "\nagent log:\n" << m->agent_log_tail();
  ASSERT_TRUE(send_all(control->get(), proto::kControlPreamble));
  proto::FrameDecoder decoder;
  std::optional<proto::Ready> ready;
  std::string failure;
  while (!ready && failure.empty()) {
    std::string bytes = read_some(control->get(), deadline);
    if (bytes.empty()) {
      failure = "control channel closed or timed out";
      break;
    }
    ASSERT_TRUE(decoder.feed(bytes));
    while (auto frame = decoder.next()) {
      ASSERT_TRUE(*frame) << frame->error().message;
      auto message = proto::parse_agent_message(frame->value());
      ASSERT_TRUE(message) << message.error().message;
      if (auto* r = std::get_if<proto::Ready>(&*message)) ready = *r;
      if (auto* e = std::get_if<proto::AgentError>(&*message)) failure = "agent error: " + e->message;
      if (auto* x = std::get_if<proto::BrowserExited>(&*message)) failure = "browser exited: " + x->reason;
    }
  }
  const auto ready_at = Clock::now();
  ASSERT_TRUE(ready) << failure << "\nagent log:\n" << m->agent_log_tail();
  EXPECT_TRUE(ready->chromium_sandbox) << ready->sandbox_note << "\nagent log:\n" << m->agent_log_tail();
  EXPECT_NE(ready->browser.version.find("Chrome/"), std::string::npos) << ready->browser.version;

  auto cdp = m->connect_agent();
  ASSERT_TRUE(cdp) << cdp.error().message;
  ASSERT_TRUE(send_all(cdp->get(), proto::kCdpPreamble));
  std::string reply;
  while (reply.find('\n') == std::string::npos) {
    std::string bytes = read_some(cdp->get(), deadline);
    ASSERT_FALSE(bytes.empty()) << "no reply to the CDP preamble";
    reply += bytes;
  }
  ASSERT_EQ(reply.substr(0, 3), "OK\n") << reply;
  std::string http = reply.substr(3);
  ASSERT_TRUE(send_all(cdp->get(), "GET /json/version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  // Read until the response is complete (Content-Length), not until close:
  // the relay may keep the stream open.
  auto complete = [&] {
    auto end = http.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    auto at = http.find("Content-Length:");  // Chromium writes no space
    if (at == std::string::npos || at > end) return false;
    return http.size() >= end + 4 + std::stoul(http.substr(at + 15));
  };
  while (!complete()) {
    std::string bytes = read_some(cdp->get(), deadline);
    if (bytes.empty()) break;
    http += bytes;
  }
  EXPECT_EQ(http.rfind("HTTP/1.1 200", 0), 0u) << http;
  EXPECT_NE(http.find("\"Browser\""), std::string::npos) << http;
  EXPECT_NE(http.find("webSocketDebuggerUrl"), std::string::npos) << http;

  // Seen from the host: Chromium's own sandbox put some of its processes in
  // user namespaces nested inside the machine's.
  {
    std::ifstream procs(m->cgroup_file("cgroup.procs"));
    std::error_code ec;
    auto machine_userns = std::filesystem::read_symlink("/proc/" + std::to_string(m->pid()) + "/ns/user", ec);
    int in_machine = 0, nested = 0;
    pid_t pid;
    while (procs >> pid) {
      ++in_machine;
      auto userns = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/user", ec);
      if (!ec && userns != machine_userns) ++nested;
    }
    EXPECT_GE(in_machine, 3);
    EXPECT_GE(nested, 1) << "no Chromium process runs in a nested user namespace";
  }
  std::cout << "machine start to Ready: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(ready_at - (deadline - std::chrono::seconds(60))).count()
            << " ms (launch " << ready->launch_ms << " ms, CDP " << ready->cdp_ready_ms << " ms)\n";
  m->kill();
  EXPECT_EQ(m->reap().signal, SIGKILL);
  EXPECT_FALSE(std::filesystem::exists(m->run_dir()));
}

}  // namespace
}  // namespace kindling::node::testing
