// The agent's parsers and buffers, on their own: everything that reads bytes
// from the host, from Chromium, or from the kernel.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "agent/agent_config.hpp"
#include "agent/cdp_relay.hpp"
#include "agent/cdp_version_probe.hpp"
#include "agent/chromium_process.hpp"
#include "agent/control_channel.hpp"
#include "agent/machine_init.hpp"

namespace kindling::agent {
namespace {

namespace ap = agent_protocol;

Result<ParsedArgs> parse(std::vector<const char*> args) {
  args.insert(args.begin(), "kindling-agent");
  return parse_agent_args(static_cast<int>(args.size()), args.data());
}

TEST(AgentConfig, ParsesTheNodesCommandLine) {
  auto parsed = parse({"--listen", "unix:/run/kindling/agent.sock", "--chromium", "/usr/lib/chromium/chromium",
                       "--user-data-dir", "/home/browser/profile/", "--browser-uid", "1000", "--browser-gid=1001",
                       "--extra-flag=--lang=de", "--extra-flag", "--window-size=800,600", "--log-level", "warn"});
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const AgentConfig& c = parsed->config;
  EXPECT_EQ(c.listen.kind, ListenAddress::Kind::kUnix);
  EXPECT_EQ(c.listen.unix_path, "/run/kindling/agent.sock");
  EXPECT_EQ(c.user_data_dir, "/home/browser/profile");
  EXPECT_EQ(c.browser_uid, 1000u);
  EXPECT_EQ(c.browser_gid, 1001u);
  EXPECT_EQ(c.extra_flags, (std::vector<std::string>{"--lang=de", "--window-size=800,600"}));
  EXPECT_EQ(c.log_level, LogLevel::kWarn);

  auto vsock = parse({"--listen=vsock:1024"});
  ASSERT_TRUE(vsock.ok());
  EXPECT_EQ(vsock->config.listen.kind, ListenAddress::Kind::kVsock);
  EXPECT_EQ(vsock->config.listen.vsock_port, 1024u);
}

TEST(AgentConfig, RefusesWhatWouldBreakTheAgent) {
  EXPECT_FALSE(parse({}).ok());
  EXPECT_FALSE(parse({"--listen", "tcp:1.2.3.4:5"}).ok());
  EXPECT_FALSE(parse({"--listen", "unix:relative.sock"}).ok());
  EXPECT_FALSE(parse({"--listen", ("unix:/" + std::string(200, 'a')).c_str()}).ok());
  EXPECT_FALSE(parse({"--listen", "vsock:99999999999"}).ok());
  EXPECT_FALSE(parse({"--listen", "vsock:12x"}).ok());
  EXPECT_FALSE(parse({"--listen", "unix:/a", "--extra-flag=--no-sandbox"}).ok());
  EXPECT_FALSE(parse({"--listen", "unix:/a", "--extra-flag=--remote-debugging-port=9222"}).ok());
  EXPECT_FALSE(parse({"--listen", "unix:/a", "--extra-flag=--user-data-dir=/tmp/x"}).ok());
  EXPECT_FALSE(parse({"--listen", "unix:/a", "--extra-flag=headless"}).ok());
  EXPECT_FALSE(parse({"--listen", "unix:/a", "--user-data-dir", "/a/../etc"}).ok());
  EXPECT_FALSE(parse({"--listen", "unix:/a", "--user-data-dir", "/"}).ok());
  EXPECT_FALSE(parse({"--listen", "unix:/a", "--browser-uid", "-1"}).ok());
  EXPECT_FALSE(parse({"--listen", "unix:/a", "--log-level", "chatty"}).ok());
  EXPECT_FALSE(parse({"--listen", "unix:/a", "--bogus"}).ok());
  EXPECT_FALSE(parse({"--listen"}).ok());
  EXPECT_EQ(parse({"--help"})->action, ParsedArgs::Action::kHelp);
}

TEST(AgentChromium, CommandLineKeepsTheSandboxUnlessTold) {
  AgentConfig config;
  config.user_data_dir = "/tmp/p";
  config.extra_flags = {"--lang=fr"};
  auto argv = chromium_argv(config, true);
  auto has = [&](const std::vector<std::string>& v, const std::string& flag) {
    return std::find(v.begin(), v.end(), flag) != v.end();
  };
  EXPECT_EQ(argv[0], "/usr/lib/chromium/chromium");
  for (const char* flag : {"--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--remote-debugging-address=127.0.0.1",
                           "--remote-debugging-port=0", "--user-data-dir=/tmp/p", "--lang=fr"})
    EXPECT_TRUE(has(argv, flag)) << flag;
  EXPECT_FALSE(has(argv, "--no-sandbox"));
  EXPECT_TRUE(has(chromium_argv(config, false), "--no-sandbox"));
  EXPECT_EQ(argv.back(), "about:blank");  // the first tab never loads the new-tab page
  // No extension options unless the session loads extensions.
  for (const auto& flag : argv) EXPECT_EQ(flag.find("extension"), std::string::npos) << flag;
}

TEST(AgentChromium, LoadsTheSessionsExtensionsAndOnlyThose) {
  auto parsed = parse(
      {"--listen", "unix:/a", "--extension", "/kindling/extensions/aa", "--extension=/kindling/extensions/bb"});
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  auto argv = chromium_argv(parsed->config, true);
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--load-extension=/kindling/extensions/aa,/kindling/extensions/bb"),
            argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(),
                      "--disable-extensions-except=/kindling/extensions/aa,/kindling/extensions/bb"),
            argv.end());
  EXPECT_EQ(argv.back(), "about:blank");
  EXPECT_FALSE(parse({"--listen", "unix:/a", "--extension", "relative/dir"}).ok());
  EXPECT_FALSE(parse({"--listen", "unix:/a", "--extension", "/a,/b"}).ok());
  EXPECT_FALSE(parse({"--listen", "unix:/a", "--extension", "/a/../b"}).ok());
  EXPECT_FALSE(parse({"--listen", "unix:/a", "--extra-flag=--load-extension=/x"}).ok());
  EXPECT_FALSE(parse({"--listen", "unix:/a", "--extra-flag=--disable-extensions-except=/x"}).ok());
  std::vector<std::string> many;
  std::vector<const char*> args = {"--listen", "unix:/a"};
  for (int i = 0; i < 17; ++i) many.push_back("/e/" + std::to_string(i));
  for (auto& m : many) {
    args.push_back("--extension");
    args.push_back(m.c_str());
  }
  EXPECT_FALSE(parse(args).ok());
}

TEST(AgentChromium, DevToolsActivePort) {
  auto e = parse_devtools_active_port("34995\n/devtools/browser/e4ac2913-f5a5\n");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->port, 34995);
  EXPECT_EQ(e->browser_path, "/devtools/browser/e4ac2913-f5a5");
  EXPECT_FALSE(parse_devtools_active_port("34995").has_value());  // still being written
  EXPECT_FALSE(parse_devtools_active_port("0\n/devtools/browser/x").has_value());
  EXPECT_FALSE(parse_devtools_active_port("70000\n/devtools/browser/x").has_value());
  EXPECT_FALSE(parse_devtools_active_port("80\n/json/list").has_value());
  EXPECT_FALSE(parse_devtools_active_port("8x\n/devtools/browser/x").has_value());
}

TEST(AgentChromium, RecognisesTheSandboxRefusal) {
  std::string out =
      "[1:1:ERROR:dbus/bus.cc(405)] Failed to connect to the bus\n"
      "[1:1:FATAL:zygote_host_impl_linux.cc(128)] No usable sandbox! If you are running on Ubuntu 23.10+ ...\n"
      "#0 0x55 base::debug::CollectStackTrace()\n";
  auto refusal = find_sandbox_refusal(out);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find("No usable sandbox!"), std::string::npos);
  EXPECT_EQ(refusal->find('\n'), std::string::npos);
  EXPECT_FALSE(find_sandbox_refusal("[1:1:ERROR:dbus/bus.cc(405)] Failed to connect to the bus\n").has_value());
}

TEST(AgentProbe, ParsesJsonVersion) {
  std::string body =
      R"({"Browser": "Chrome/156.0.8078.114", "Protocol-Version": "1.3", "User-Agent": "UA/1",)"
      R"( "webSocketDebuggerUrl": "ws://127.0.0.1:34995/devtools/browser/e4ac"})";
  std::string response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length:" +
                         std::to_string(body.size()) + "\r\n\r\n" + body;
  // Incomplete at every split point, complete at the end.
  for (std::size_t cut = 0; cut < response.size(); ++cut)
    EXPECT_FALSE(parse_json_version_response(response.substr(0, cut), false).has_value()) << cut;
  auto parsed = parse_json_version_response(response, false);
  ASSERT_TRUE(parsed.has_value() && parsed->ok()) << (parsed ? parsed->error().message : "incomplete");
  EXPECT_EQ(parsed->value().version, "Chrome/156.0.8078.114");
  EXPECT_EQ(parsed->value().protocol_version, "1.3");
  EXPECT_EQ(parsed->value().user_agent, "UA/1");
  EXPECT_EQ(parsed->value().websocket_path, "/devtools/browser/e4ac");

  auto cut_short = parse_json_version_response(response.substr(0, response.size() - 3), true);
  ASSERT_TRUE(cut_short.has_value());
  EXPECT_FALSE(cut_short->ok());
  auto not_found = parse_json_version_response("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false);
  ASSERT_TRUE(not_found.has_value());
  EXPECT_FALSE(not_found->ok());
  auto page = parse_json_version_response(
      "HTTP/1.1 200 OK\r\n\r\n{\"Browser\":\"b\",\"Protocol-Version\":\"1\",\"User-Agent\":\"u\","
      "\"webSocketDebuggerUrl\":\"ws://h/devtools/page/1\"}",
      true);
  ASSERT_TRUE(page.has_value());
  EXPECT_FALSE(page->ok());
}

TEST(AgentControl, PreambleAcrossSplitsKeepsWhatFollows) {
  PreambleReader reader;
  std::string wire = std::string(ap::kCdpPreamble) + "GET /json HTTP/1.1\r\n";
  std::optional<Result<PreambleReader::Preamble>> outcome;
  for (std::size_t i = 0; i < 20 && !outcome; ++i) outcome = reader.feed(wire.substr(i, 1));
  ASSERT_TRUE(outcome.has_value());
  ASSERT_TRUE(outcome->ok());
  EXPECT_EQ(outcome->value().kind, ap::ConnectionKind::kCdp);

  PreambleReader whole;
  auto at_once = whole.feed(wire);
  ASSERT_TRUE(at_once && at_once->ok());
  EXPECT_EQ(at_once->value().leftover, "GET /json HTTP/1.1\r\n");

  PreambleReader too_long;
  EXPECT_FALSE(too_long.feed(std::string(40, 'K')).has_value());
  auto refused = too_long.feed(std::string(40, 'K'));
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->error().message, "bad-preamble");
  PreambleReader unknown;
  EXPECT_EQ(unknown.feed("KINDLING/2 CONTROL\n")->error().message, "unknown-preamble");
}

TEST(AgentControl, InboxSeparatesBadMessagesFromBrokenStreams) {
  ControlInbox inbox;
  std::string junk = "[1,2]";
  std::string wire = ap::encode_frame({{"type", "ping"}, {"id", 1}}) + std::string("\0\0\0", 3) +
                     static_cast<char>(junk.size()) + junk + ap::encode_frame({{"type", "shutdown"}});
  ASSERT_TRUE(inbox.feed(wire));
  auto a = inbox.next();
  ASSERT_TRUE(a && a->kind == ControlInbox::Item::Kind::kMessage);
  EXPECT_EQ(std::get<ap::Ping>(a->message).id, 1u);
  auto b = inbox.next();
  ASSERT_TRUE(b && b->kind == ControlInbox::Item::Kind::kInvalid);
  auto c = inbox.next();
  ASSERT_TRUE(c && c->kind == ControlInbox::Item::Kind::kMessage);
  EXPECT_TRUE(std::holds_alternative<ap::Shutdown>(c->message));
  EXPECT_FALSE(inbox.next().has_value());

  // An oversized header right behind a valid frame: the frame first, then broken, once.
  ControlInbox broken;
  ASSERT_TRUE(broken.feed(ap::encode_frame({{"type", "ping"}, {"id", 2}}) + std::string("\x01\x00\x00\x01", 4)));
  auto first = broken.next();
  ASSERT_TRUE(first && first->kind == ControlInbox::Item::Kind::kMessage);
  auto second = broken.next();
  ASSERT_TRUE(second && second->kind == ControlInbox::Item::Kind::kBroken);
  EXPECT_FALSE(broken.next().has_value());
  EXPECT_FALSE(broken.feed("more"));
}

TEST(AgentMachine, MountPointsFromMountinfo) {
  std::string sample =
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
      "23 22 0:21 / /proc rw,nosuid,nodev,noexec shared:12 - proc proc rw\n"
      "24 22 0:22 / /mnt/with\\040space rw - tmpfs tmpfs rw\n"
      "garbage\n";
  auto points = parse_mount_points(sample);
  EXPECT_EQ(points, (std::set<std::string>{"/", "/proc", "/mnt/with space"}));
  // And on this machine's real table.
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream s;
  s << in.rdbuf();
  auto real = parse_mount_points(s.str());
  EXPECT_TRUE(real.count("/"));
  EXPECT_TRUE(real.count("/proc"));
}

TEST(AgentRelay, BufferIsBoundedAndKeepsOrder) {
  std::string pattern;
  for (std::size_t i = 0; pattern.size() < kRelayBufferBytes + 100; ++i) pattern += static_cast<char>(i * 131 % 251);
  RelayBuffer buffer;
  EXPECT_EQ(buffer.append(pattern), kRelayBufferBytes);  // bounded: the rest waits
  EXPECT_EQ(buffer.free_space(), 0u);
  EXPECT_EQ(buffer.read_from(0), -EAGAIN);  // full: reads nothing
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair), 0);
  std::string received;
  RelayBuffer sink;
  while (!buffer.empty()) {
    long sent = buffer.write_to(pair[0]);
    ASSERT_TRUE(sent > 0 || sent == -EAGAIN);
    long got;
    while ((got = sink.read_from(pair[1])) > 0) {
      int copy[2];
      ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, copy), 0);
      while (!sink.empty()) ASSERT_GT(sink.write_to(copy[0]), 0);
      ::shutdown(copy[0], SHUT_WR);
      char chunk[65536];
      ssize_t n;
      while ((n = ::read(copy[1], chunk, sizeof(chunk))) > 0) received.append(chunk, static_cast<std::size_t>(n));
      ::close(copy[0]);
      ::close(copy[1]);
    }
  }
  EXPECT_TRUE(received == pattern.substr(0, kRelayBufferBytes));
  ::close(pair[0]);
  ::close(pair[1]);
}

}  // namespace
}  // namespace kindling::agent
