// kindling-agent end to end: the real binary, a real Chromium (as nobody, so
// Chromium's own sandbox stays on), real sockets.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "agent_harness.hpp"

namespace kindling::agent_test {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

#define ASSERT_OK(expr)                                   \
  ({                                                      \
    auto result_ = (expr);                                \
    ASSERT_TRUE(result_.ok()) << result_.error().message; \
    std::move(result_).value();                           \
  })

// Starts an agent and waits for hello + ready on a control connection.
struct ReadyAgent {
  explicit ReadyAgent(const AgentOptions& options = {}) : agent(options) {}
  AgentProcess agent;
  std::optional<ControlClient> control;
  ap::Ready ready;
};

void start_ready(ReadyAgent& a) {
  auto control = ControlClient::connect(a.agent.socket_path());
  ASSERT_TRUE(control.ok()) << control.error().message;
  a.control = std::move(control).value();
  auto hello = a.control->next();
  ASSERT_TRUE(hello.ok()) << hello.error().message << "\n" << a.agent.log();
  ASSERT_TRUE(std::holds_alternative<ap::Hello>(*hello));
  auto ready = a.control->next(30s);
  ASSERT_TRUE(ready.ok()) << ready.error().message << "\n" << a.agent.log();
  ASSERT_TRUE(std::holds_alternative<ap::Ready>(*ready)) << ap::to_json(*ready).dump() << "\n" << a.agent.log();
  a.ready = std::get<ap::Ready>(*ready);
}

pid_t browser_pid(pid_t agent) {
  for (pid_t p : descendants(agent))
    if (process_cmdline(p).rfind("/usr/lib/chromium/chromium --headless", 0) == 0) {
      std::ifstream in("/proc/" + std::to_string(p) + "/stat");
      std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (stat.find(") S " + std::to_string(agent) + " ") != std::string::npos ||
          stat.find(") R " + std::to_string(agent) + " ") != std::string::npos)
        return p;
    }
  return -1;
}

std::string namespace_of(pid_t pid, const char* ns) {
  char buf[128] = {};
  std::string link = "/proc/" + std::to_string(pid) + "/ns/" + ns;
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

TEST(Agent, HelloThenReadyWithChromiumSandboxOn) {
  ReadyAgent a;
  ASSERT_NO_FATAL_FAILURE(start_ready(a));
  EXPECT_EQ(a.ready.browser.version.rfind("Chrome/", 0), 0u) << a.ready.browser.version;
  EXPECT_EQ(a.ready.browser.protocol_version, "1.3");
  EXPECT_NE(a.ready.browser.user_agent.find("HeadlessChrome"), std::string::npos);
  EXPECT_EQ(a.ready.browser.websocket_path.rfind("/devtools/browser/", 0), 0u);
  EXPECT_TRUE(a.ready.chromium_sandbox);
  EXPECT_EQ(a.ready.sandbox_note, "");
  EXPECT_GT(a.ready.launch_ms, 0);
  EXPECT_GT(a.ready.cdp_ready_ms, 0);

  // The sandbox is really on: Chromium runs as nobody, without --no-sandbox,
  // and some of its processes live in user namespaces of their own.
  pid_t browser = browser_pid(a.agent.pid());
  ASSERT_GT(browser, 0);
  std::ifstream status("/proc/" + std::to_string(browser) + "/status");
  std::string line, uid_line;
  while (std::getline(status, line))
    if (line.rfind("Uid:", 0) == 0) uid_line = line;
  EXPECT_EQ(uid_line, "Uid:\t65534\t65534\t65534\t65534");
  const std::string agent_userns = namespace_of(a.agent.pid(), "user");
  bool sandboxed_child = false;
  for (pid_t p : descendants(a.agent.pid())) {
    EXPECT_EQ(process_cmdline(p).find("--no-sandbox"), std::string::npos) << process_cmdline(p);
    std::string userns = namespace_of(p, "user");
    if (!userns.empty() && userns != agent_userns) sandboxed_child = true;
  }
  EXPECT_TRUE(sandboxed_child) << "no Chromium process runs in its own user namespace";

  // The profile is fresh and the browser's.
  struct stat st{};
  ASSERT_EQ(::stat(a.agent.user_data_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  ASSERT_TRUE(a.control->send(ap::Ping{42}).ok());
  auto pong = a.control->next_of<ap::Pong>();
  ASSERT_TRUE(pong.ok()) << pong.error().message;
  EXPECT_EQ(pong->id, 42u);
}

TEST(Agent, CdpStreamCarriesHttpAndWebSocket) {
  ReadyAgent a;
  ASSERT_NO_FATAL_FAILURE(start_ready(a));

  // HTTP discovery through a CDP stream.
  {
    auto stream = ASSERT_OK(open_cdp_stream(a.agent.socket_path()));
    ASSERT_TRUE(write_all(stream.get(), "GET /json/version HTTP/1.1\r\nHost: localhost\r\n\r\n").ok());
    std::string response = read_http_response(stream.get());
    ASSERT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response;
    auto body = json::parse(response.substr(response.find("\r\n\r\n") + 4), nullptr, false);
    ASSERT_TRUE(body.is_object()) << response;
    EXPECT_EQ(body["Browser"], a.ready.browser.version);
    // Half-close: our EOF reaches Chromium, which closes; its EOF reaches us.
    ::shutdown(stream.get(), SHUT_WR);
    EXPECT_TRUE(closed_by_peer(stream.get(), 5s));
  }

  // A real websocket to the browser target.
  auto stream = ASSERT_OK(open_cdp_stream(a.agent.socket_path()));
  auto ws = ASSERT_OK(WebSocket::handshake(std::move(stream), a.ready.browser.websocket_path));
  CdpSession cdp(std::move(ws));
  auto version = ASSERT_OK(cdp.call("Browser.getVersion"));
  EXPECT_EQ(version["product"], a.ready.browser.version);
  EXPECT_EQ(version["protocolVersion"], "1.3");
}

TEST(Agent, TenMegabyteMessagesPassIntactBothWays) {
  ReadyAgent a;
  ASSERT_NO_FATAL_FAILURE(start_ready(a));
  auto stream = ASSERT_OK(open_cdp_stream(a.agent.socket_path()));
  auto ws = ASSERT_OK(WebSocket::handshake(std::move(stream), a.ready.browser.websocket_path));
  CdpSession cdp(std::move(ws));
  auto target = ASSERT_OK(cdp.call("Target.createTarget", {{"url", "about:blank"}}));
  auto attached = ASSERT_OK(cdp.call("Target.attachToTarget", {{"targetId", target["targetId"]}, {"flatten", true}}));
  const std::string session = attached["sessionId"];

  // Host -> Chromium: a 12 MiB expression, answered with a checksum of it.
  std::string text;
  text.reserve(12u << 20);
  for (std::size_t i = 0; text.size() < (12u << 20); ++i) text += static_cast<char>('a' + (i * 7 + i / 26) % 26);
  std::uint64_t expected_sum = 0;
  for (char c : text) expected_sum = (expected_sum * 31 + static_cast<unsigned char>(c)) % 1000000007;
  std::string expression = "(() => { const s = '" + text +
                           "'; let h = 0; for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) % "
                           "1000000007; return s.length + ':' + h; })()";
  auto up = ASSERT_OK(cdp.call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}}, session));
  EXPECT_EQ(up["result"]["value"], std::to_string(text.size()) + ":" + std::to_string(expected_sum))
      << up.dump().substr(0, 300);

  // Chromium -> host: the same string comes back, byte for byte.
  auto down = ASSERT_OK(cdp.call("Runtime.evaluate",
                                 {{"expression", "(() => { let s = ''; for (let i = 0; s.length < " +
                                                     std::to_string(text.size()) +
                                                     "; ++i) s += String.fromCharCode(97 + (i * 7 + Math.floor(i / "
                                                     "26)) % 26); return s; })()"},
                                  {"returnByValue", true}},
                                 session));
  ASSERT_TRUE(down["result"]["value"].is_string()) << down.dump().substr(0, 300);
  const std::string& back = down["result"]["value"].get_ref<const std::string&>();
  EXPECT_EQ(back.size(), text.size());
  EXPECT_TRUE(back == text) << "the 12 MiB string came back altered";
}

TEST(Agent, ManyConcurrentCdpStreams) {
  ReadyAgent a;
  ASSERT_NO_FATAL_FAILURE(start_ready(a));
  constexpr int kStreams = 24;
  std::vector<UniqueFd> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(ASSERT_OK(open_cdp_stream(a.agent.socket_path())));
    ASSERT_TRUE(write_all(streams.back().get(), "GET /json/version HTTP/1.1\r\nHost: localhost\r\n\r\n").ok());
  }
  for (auto& s : streams) {
    std::string response = read_http_response(s.get());
    EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response.substr(0, 200);
    EXPECT_NE(response.find(a.ready.browser.version), std::string::npos);
  }
}

TEST(Agent, KilledChromiumIsReportedWithinTwoSeconds) {
  ReadyAgent a;
  ASSERT_NO_FATAL_FAILURE(start_ready(a));
  pid_t browser = browser_pid(a.agent.pid());
  ASSERT_GT(browser, 0);
  auto killed_at = Clock::now();
  ASSERT_EQ(::kill(browser, SIGKILL), 0);
  auto exited = a.control->next_of<ap::BrowserExited>(5s);
  auto elapsed = Clock::now() - killed_at;
  ASSERT_TRUE(exited.ok()) << exited.error().message << "\n" << a.agent.log();
  EXPECT_LT(elapsed, 2s);
  EXPECT_EQ(exited->signal, std::optional<int>(SIGKILL));
  EXPECT_FALSE(exited->exit_code.has_value());
  EXPECT_NE(exited->reason.find("signal 9"), std::string::npos) << exited->reason;

  // The agent stays up to be asked: CDP is refused with a reason, a new
  // control client gets the whole story replayed.
  EXPECT_TRUE(a.agent.running());
  auto fd = ASSERT_OK(connect_agent(a.agent.socket_path()));
  ASSERT_TRUE(write_all(fd.get(), ap::kCdpPreamble).ok());
  EXPECT_EQ(ASSERT_OK(read_line(fd.get())), "ERR browser-exited\n");
  auto second = ASSERT_OK(ControlClient::connect(a.agent.socket_path()));
  EXPECT_TRUE(std::holds_alternative<ap::Hello>(ASSERT_OK(second.next())));
  EXPECT_TRUE(std::holds_alternative<ap::Ready>(ASSERT_OK(second.next())));
  auto replayed = ASSERT_OK(second.next());
  ASSERT_TRUE(std::holds_alternative<ap::BrowserExited>(replayed));
  EXPECT_EQ(std::get<ap::BrowserExited>(replayed).signal, std::optional<int>(SIGKILL));
  // Chromium's other processes went with it.
  auto deadline = Clock::now() + 5s;
  while (!descendants(a.agent.pid()).empty() && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(descendants(a.agent.pid()).empty());
}

void expect_clean_exit(ReadyAgent& a, const std::vector<pid_t>& chromium) {
  auto status = a.agent.wait_exit(10s);
  ASSERT_TRUE(status.has_value()) << "agent did not exit\n" << a.agent.log();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  for (pid_t p : chromium) EXPECT_FALSE(process_exists(p)) << p << " " << process_cmdline(p);
  struct stat st{};
  EXPECT_NE(::lstat(a.agent.socket_path().c_str(), &st), 0) << "socket file left behind";
}

TEST(Agent, ShutdownMessageLeavesNoChromiumBehind) {
  ReadyAgent a;
  ASSERT_NO_FATAL_FAILURE(start_ready(a));
  std::vector<pid_t> chromium = descendants(a.agent.pid());
  ASSERT_GE(chromium.size(), 2u);
  ASSERT_TRUE(a.control->send(ap::Shutdown{}).ok());
  auto exited = a.control->next_of<ap::BrowserExited>(10s);
  ASSERT_TRUE(exited.ok()) << exited.error().message;
  EXPECT_NE(exited->reason.find("agent shutdown"), std::string::npos) << exited->reason;
  expect_clean_exit(a, chromium);
}

TEST(Agent, SigtermLeavesNoChromiumBehind) {
  ReadyAgent a;
  ASSERT_NO_FATAL_FAILURE(start_ready(a));
  std::vector<pid_t> chromium = descendants(a.agent.pid());
  ASSERT_GE(chromium.size(), 2u);
  ASSERT_EQ(::kill(a.agent.pid(), SIGTERM), 0);
  expect_clean_exit(a, chromium);
}

TEST(Agent, BadInputIsRefusedWithoutHarm) {
  ReadyAgent a;
  ASSERT_NO_FATAL_FAILURE(start_ready(a));
  const std::string& sock = a.agent.socket_path();
  {
    auto fd = ASSERT_OK(connect_agent(sock));
    ASSERT_TRUE(write_all(fd.get(), "GET / HTTP/1.1\r\n").ok());
    EXPECT_EQ(ASSERT_OK(read_line(fd.get())), "ERR unknown-preamble\n");
  }
  {
    auto fd = ASSERT_OK(connect_agent(sock));
    ASSERT_TRUE(write_all(fd.get(), std::string(100, 'K')).ok());
    EXPECT_EQ(ASSERT_OK(read_line(fd.get())), "ERR bad-preamble\n");
  }
  {
    auto fd = ASSERT_OK(connect_agent(sock));
    ASSERT_TRUE(write_all(fd.get(), std::string("KINDLING/1 CONTROL\0\n", 20)).ok());
    EXPECT_EQ(ASSERT_OK(read_line(fd.get())), "ERR unknown-preamble\n");
  }
  // Invalid messages are answered and the connection stays.
  auto other = ASSERT_OK(ControlClient::connect(sock));
  ASSERT_TRUE(std::holds_alternative<ap::Hello>(ASSERT_OK(other.next())));
  std::string junk = "{not json";
  ASSERT_TRUE(other.send_raw(std::string("\0\0\0", 3) + static_cast<char>(junk.size()) + junk).ok());
  auto error = ASSERT_OK(other.next_of<ap::AgentError>());
  EXPECT_NE(error.message.find("invalid message"), std::string::npos) << error.message;
  ASSERT_TRUE(other.send_raw(ap::encode_frame(json{{"type", "reboot"}})).ok());
  error = ASSERT_OK(other.next_of<ap::AgentError>());
  EXPECT_NE(error.message.find("unknown host message type"), std::string::npos) << error.message;
  ASSERT_TRUE(other.send_raw(ap::encode_frame(json{{"type", "ping"}, {"id", -1}})).ok());
  error = ASSERT_OK(other.next_of<ap::AgentError>());
  ASSERT_TRUE(other.send(ap::Ping{7}).ok());
  EXPECT_EQ(ASSERT_OK(other.next_of<ap::Pong>()).id, 7u);

  // An oversized frame breaks the stream: answered, then closed.
  ASSERT_TRUE(other.send_raw(std::string("\x7f\xff\xff\xff", 4)).ok());
  error = ASSERT_OK(other.next_of<ap::AgentError>());
  EXPECT_NE(error.message.find("frame larger than"), std::string::npos) << error.message;
  EXPECT_FALSE(other.next(5s).ok()) << "the connection should be closed";

  // The agent lives on and still relays.
  EXPECT_TRUE(a.agent.running());
  auto again = ASSERT_OK(ControlClient::connect(sock));
  ASSERT_TRUE(again.send(ap::Ping{8}).ok());
  EXPECT_EQ(ASSERT_OK(again.next_of<ap::Pong>()).id, 8u);
  auto stream = ASSERT_OK(open_cdp_stream(sock));
  auto ws = ASSERT_OK(WebSocket::handshake(std::move(stream), a.ready.browser.websocket_path));
  CdpSession cdp(std::move(ws));
  EXPECT_TRUE(cdp.call("Browser.getVersion").ok());
}

TEST(Agent, NewControlConnectionReplacesTheOld) {
  ReadyAgent a;
  ASSERT_NO_FATAL_FAILURE(start_ready(a));
  auto second = ASSERT_OK(ControlClient::connect(a.agent.socket_path()));
  EXPECT_TRUE(std::holds_alternative<ap::Hello>(ASSERT_OK(second.next())));
  auto ready = ASSERT_OK(second.next());
  ASSERT_TRUE(std::holds_alternative<ap::Ready>(ready));
  EXPECT_EQ(std::get<ap::Ready>(ready).browser.websocket_path, a.ready.browser.websocket_path);
  auto told = ASSERT_OK(a.control->next_of<ap::AgentError>());
  EXPECT_NE(told.message.find("replaced"), std::string::npos);
  EXPECT_FALSE(a.control->next(5s).ok());
}

// When the kernel refuses Chromium's sandbox (here: a seccomp filter that
// forbids user namespaces), the agent relaunches it once without, and says so.
TEST(Agent, SandboxRefusedByKernelFallsBackAndSaysWhy) {
  AgentOptions options;
  options.deny_user_namespaces = true;
  ReadyAgent a(options);
  ASSERT_NO_FATAL_FAILURE(start_ready(a));
  EXPECT_FALSE(a.ready.chromium_sandbox);
  RecordProperty("sandboxNote", a.ready.sandbox_note);
  EXPECT_NE(a.ready.sandbox_note.find("--no-sandbox"), std::string::npos) << a.ready.sandbox_note;
  EXPECT_NE(a.ready.sandbox_note.find("sandbox"), std::string::npos) << a.ready.sandbox_note;
  pid_t browser = browser_pid(a.agent.pid());
  ASSERT_GT(browser, 0);
  EXPECT_NE(process_cmdline(browser).find("--no-sandbox"), std::string::npos);
  auto stream = ASSERT_OK(open_cdp_stream(a.agent.socket_path()));
  auto ws = ASSERT_OK(WebSocket::handshake(std::move(stream), a.ready.browser.websocket_path));
  CdpSession cdp(std::move(ws));
  EXPECT_TRUE(cdp.call("Browser.getVersion").ok());
}

// As PID 1 of its own pid and mount namespaces the agent mounts what is
// missing (here /tmp and /run, which are not mount points on this host),
// leaves what is mounted alone, and still shuts down leaving nothing behind.
TEST(Agent, AsPid1MountsWhatIsMissingAndShutsDownClean) {
  AgentOptions options;
  options.as_pid1 = true;
  ReadyAgent a(options);
  ASSERT_NO_FATAL_FAILURE(start_ready(a));
  EXPECT_TRUE(a.ready.chromium_sandbox);
  pid_t agent = a.agent.agent_pid();
  ASSERT_GT(agent, 0);
  std::ifstream status("/proc/" + std::to_string(agent) + "/status");
  std::string line, nspid;
  while (std::getline(status, line))
    if (line.rfind("NSpid:", 0) == 0) nspid = line;
  EXPECT_TRUE(nspid.ends_with("\t1")) << nspid;

  std::ifstream mountinfo("/proc/" + std::to_string(agent) + "/mountinfo");
  std::map<std::string, std::string> fs_at;  // mount point -> fs type (last mount wins)
  std::map<std::string, int> count;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string f, point, type;
    for (int i = 1; i <= 5; ++i) fields >> f, point = i == 5 ? f : point;
    while (fields >> f && f != "-") {
    }
    fields >> type;
    fs_at[point] = type;
    ++count[point];
  }
  auto host_count = [](const std::string& path) {
    std::ifstream self("/proc/self/mountinfo");
    std::string l;
    int n = 0;
    while (std::getline(self, l)) n += l.find(" " + path + " ") != std::string::npos;
    return n;
  };
  auto host_mounted = [&](const std::string& path) { return host_count(path) > 0; };
  for (const char* path : {"/tmp", "/run"}) {
    if (host_mounted(path)) continue;  // nothing for the agent to do on such a host
    EXPECT_EQ(fs_at[path], "tmpfs") << path;
  }
  // Existing mounts are left alone: no second one stacked on top.
  for (const char* path : {"/proc", "/dev", "/dev/shm"}) EXPECT_EQ(count[path], host_count(path)) << path;

  std::vector<pid_t> everything = descendants(a.agent.pid());
  ASSERT_TRUE(a.control->send(ap::Shutdown{}).ok());
  auto exit_status = a.agent.wait_exit(10s);
  ASSERT_TRUE(exit_status.has_value()) << a.agent.log();
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 0) << *exit_status << "\n" << a.agent.log();
  for (pid_t p : everything) EXPECT_FALSE(process_exists(p)) << p << " " << process_cmdline(p);
}

// A "browser" that never opens its debugging port: CDP must be refused as
// not ready, and when it dies its exit code and last words are reported.
TEST(Agent, CdpRefusedUntilReadyAndEarlyDeathReported) {
  TempDir scripts;
  std::string fake = scripts.path() + "/never-ready";
  {
    std::ofstream out(fake);
    out << "#!/bin/sh\necho 'starting up' >&2\nsleep 2\necho 'giving up: no display' >&2\nexit 3\n";
  }
  ::chmod(fake.c_str(), 0755);
  AgentProcess agent(AgentOptions{fake, {}});
  auto control = ASSERT_OK(ControlClient::connect(agent.socket_path()));
  EXPECT_TRUE(std::holds_alternative<ap::Hello>(ASSERT_OK(control.next())));
  auto fd = ASSERT_OK(connect_agent(agent.socket_path()));
  ASSERT_TRUE(write_all(fd.get(), ap::kCdpPreamble).ok());
  EXPECT_EQ(ASSERT_OK(read_line(fd.get())), "ERR not-ready\n");
  auto exited = ASSERT_OK(control.next_of<ap::BrowserExited>(10s));
  EXPECT_EQ(exited.exit_code, std::optional<int>(3));
  EXPECT_NE(exited.reason.find("before CDP was ready: giving up: no display"), std::string::npos) << exited.reason;
}

TEST(Agent, ApplyIdentityReachesPagesOpenedLater) {
  ReadyAgent a;
  ASSERT_NO_FATAL_FAILURE(start_ready(a));
  ap::ApplyIdentity apply;
  apply.id = 7;
  apply.identity.viewport = Viewport{1111, 555};
  apply.identity.timezone = "Asia/Tokyo";
  apply.identity.locale = "fr-FR";
  ASSERT_TRUE(a.control->send(apply).ok());
  auto applied = ASSERT_OK(a.control->next_of<ap::IdentityApplied>());
  EXPECT_EQ(applied.id, 7u);
  ASSERT_TRUE(applied.ok) << applied.error << "\n" << a.agent.log();

  // One identity per browser.
  apply.id = 8;
  ASSERT_TRUE(a.control->send(apply).ok());
  auto again = ASSERT_OK(a.control->next_of<ap::IdentityApplied>());
  EXPECT_EQ(again.id, 8u);
  EXPECT_FALSE(again.ok);

  // A page opened afterwards by another client: its inline script already
  // sees the identity (the agent held it paused until its overrides were on).
  auto stream = ASSERT_OK(open_cdp_stream(a.agent.socket_path()));
  CdpSession cdp(ASSERT_OK(WebSocket::handshake(std::move(stream), a.ready.browser.websocket_path)));
  std::string url =
      "data:text/html,<script>window.seen=[innerWidth,innerHeight,navigator.language,"
      "Intl.DateTimeFormat().resolvedOptions().timeZone].join('|')</script>";
  auto target = ASSERT_OK(cdp.call("Target.createTarget", {{"url", url}}));
  auto attached = ASSERT_OK(cdp.call("Target.attachToTarget", {{"targetId", target["targetId"]}, {"flatten", true}}));
  std::string session = attached["sessionId"];
  json value;
  for (int i = 0; i < 500; ++i) {  // until the document has run its script
    auto r = ASSERT_OK(cdp.call("Runtime.evaluate", {{"expression", "window.seen"}, {"returnByValue", true}}, session));
    value = r["result"]["value"];
    if (value.is_string()) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(value, "1111|555|fr-FR|Asia/Tokyo") << a.agent.log();
}

TEST(Agent, ApplyIdentityWithNoPageYetStillAnswers) {
  ReadyAgent a;
  ASSERT_NO_FATAL_FAILURE(start_ready(a));
  auto stream = ASSERT_OK(open_cdp_stream(a.agent.socket_path()));
  CdpSession cdp(ASSERT_OK(WebSocket::handshake(std::move(stream), a.ready.browser.websocket_path)));
  auto targets = ASSERT_OK(cdp.call("Target.getTargets"));
  for (const auto& t : targets["targetInfos"])
    if (t["type"] == "page") ASSERT_OK(cdp.call("Target.closeTarget", {{"targetId", t["targetId"]}}));
  auto pages_left = [&] {
    int n = 0;
    auto now = cdp.call("Target.getTargets");
    if (now.ok())
      for (const auto& t : (*now)["targetInfos"]) n += t["type"] == "page";
    return n;
  };
  for (int i = 0; i < 500 && pages_left() > 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(pages_left(), 0);
  // No page to apply it to: the agent waits a bounded time for Chromium's
  // first tab, then answers rather than leaving the host hanging.
  ap::ApplyIdentity apply;
  apply.id = 5;
  apply.identity.timezone = "Asia/Tokyo";
  ASSERT_TRUE(a.control->send(apply).ok());
  auto applied = ASSERT_OK(a.control->next_of<ap::IdentityApplied>(20s));
  EXPECT_TRUE(applied.ok) << applied.error;
  // A page opened afterwards still gets the identity.
  std::string url = "data:text/html,<script>window.seen=Intl.DateTimeFormat().resolvedOptions().timeZone</script>";
  auto target = ASSERT_OK(cdp.call("Target.createTarget", {{"url", url}}));
  auto attached = ASSERT_OK(cdp.call("Target.attachToTarget", {{"targetId", target["targetId"]}, {"flatten", true}}));
  std::string session = attached["sessionId"];
  json value;
  for (int i = 0; i < 500 && !value.is_string(); ++i) {
    auto r = ASSERT_OK(cdp.call("Runtime.evaluate", {{"expression", "window.seen"}, {"returnByValue", true}}, session));
    value = r["result"]["value"];
    if (!value.is_string()) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(value, "Asia/Tokyo") << a.agent.log();
}

TEST(Agent, ApplyIdentityReportsWhatChromiumRefuses) {
  ReadyAgent a;
  ASSERT_NO_FATAL_FAILURE(start_ready(a));
  ap::ApplyIdentity apply;
  apply.id = 3;
  apply.identity.timezone = "Mars/Olympus_Mons";
  ASSERT_TRUE(a.control->send(apply).ok());
  auto applied = ASSERT_OK(a.control->next_of<ap::IdentityApplied>());
  EXPECT_EQ(applied.id, 3u);
  EXPECT_FALSE(applied.ok);
  EXPECT_EQ(applied.error.rfind("Chromium refused timezone 'Mars/Olympus_Mons'", 0), 0u) << applied.error;
  // The agent keeps serving.
  ASSERT_TRUE(a.control->send(ap::Ping{4}).ok());
  EXPECT_EQ(ASSERT_OK(a.control->next_of<ap::Pong>()).id, 4u);
}

}  // namespace
}  // namespace kindling::agent_test
