// The pure parts of the agent's own CDP connection: the websocket codec and
// the CDP commands that apply a session's identity.
#include <gtest/gtest.h>

#include "agent/cdp_websocket.hpp"
#include "agent/identity_applier.hpp"

using namespace kindling;
using namespace kindling::agent;
using nlohmann::json;

namespace {
const std::uint8_t kNoMask[4] = {0, 0, 0, 0};

// A server frame (never masked), as Chromium sends them.
std::string server_frame(std::uint8_t first_byte, std::string_view payload) {
  std::string f(1, static_cast<char>(first_byte));
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(payload.size()));
  } else if (payload.size() <= 0xffff) {
    f.push_back(126);
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    f.push_back(127);
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((std::uint64_t(payload.size()) >> (i * 8)) & 0xff));
  }
  return f + std::string(payload);
}
}  // namespace

TEST(WebSocket, AcceptKeyMatchesRfc6455Example) {
  EXPECT_EQ(websocket::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(websocket::base64("f"), "Zg==");
  EXPECT_EQ(websocket::base64("fo"), "Zm8=");
  EXPECT_EQ(websocket::base64("foo"), "Zm9v");
}

TEST(WebSocket, HandshakeResponse) {
  const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
  std::string good =
      "HTTP/1.1 101 WebSocket Protocol Handshake\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  EXPECT_FALSE(websocket::parse_handshake_response(good.substr(0, good.size() - 2), key).has_value());
  auto r = websocket::parse_handshake_response(good + "\x81\x00", key);
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ(r->value(), good.size());
  std::string wrong = good;
  wrong.replace(wrong.find("s3pP"), 4, "AAAA");
  EXPECT_FALSE(websocket::parse_handshake_response(wrong, key)->ok());
  EXPECT_FALSE(websocket::parse_handshake_response("HTTP/1.1 404 Not Found\r\n\r\n", key)->ok());
  EXPECT_FALSE(websocket::parse_handshake_response(std::string(20000, 'x'), key)->ok());
  auto request = websocket::handshake_request("127.0.0.1:9222", "/devtools/browser/x", key);
  EXPECT_EQ(request.rfind("GET /devtools/browser/x HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(request.find("Sec-WebSocket-Key: " + key + "\r\n"), std::string::npos);
}

TEST(WebSocket, ClientFramesAreMaskedWithEveryLengthForm) {
  const std::uint8_t mask[4] = {1, 2, 3, 4};
  for (std::size_t n : {0u, 5u, 125u, 126u, 65535u, 65536u}) {
    std::string payload(n, 'a');
    std::string f = websocket::encode_frame(websocket::kText, payload, mask);
    auto* b = reinterpret_cast<const unsigned char*>(f.data());
    EXPECT_EQ(b[0], 0x81);
    EXPECT_TRUE(b[1] & 0x80) << "client frames must be masked";
    std::size_t header = n < 126 ? 2 : n <= 0xffff ? 4 : 10;
    ASSERT_EQ(f.size(), header + 4 + n);
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(static_cast<char>(f[header + 4 + i] ^ mask[i % 4]), 'a');
  }
  EXPECT_EQ(static_cast<unsigned char>(websocket::encode_frame(websocket::kText, "x", kNoMask, false)[0]), 0x01);
}

TEST(WebSocket, ReaderReassemblesFragmentsAcrossControlFrames) {
  websocket::FrameReader reader;
  std::string wire = server_frame(0x01, "{\"a\":") + server_frame(0x89, "hi") + server_frame(0x80, "1}") +
                     server_frame(0x81, std::string(70000, 'z'));
  for (char c : wire) reader.feed(std::string_view(&c, 1));  // any split
  auto ping = reader.next();
  ASSERT_TRUE(ping && ping->ok());
  EXPECT_EQ(ping->value().opcode, websocket::kPing);
  EXPECT_EQ(ping->value().payload, "hi");
  auto text = reader.next();
  ASSERT_TRUE(text && text->ok());
  EXPECT_EQ(text->value().opcode, websocket::kText);
  EXPECT_EQ(text->value().payload, "{\"a\":1}");
  auto big = reader.next();
  ASSERT_TRUE(big && big->ok());
  EXPECT_EQ(big->value().payload.size(), 70000u);
  EXPECT_FALSE(reader.next().has_value());
}

TEST(WebSocket, ReaderRefusesWhatRfc6455Forbids) {
  auto fails = [](std::string wire, std::size_t max = 1 << 20) {
    websocket::FrameReader reader(max);
    reader.feed(wire);
    while (auto m = reader.next())
      if (!m->ok()) return true;
    return false;
  };
  EXPECT_TRUE(fails(std::string("\x81\x81\x00\x00\x00\x00x", 7)));       // masked server frame
  EXPECT_TRUE(fails(server_frame(0xC1, "x")));                           // RSV1 without an extension
  EXPECT_TRUE(fails(server_frame(0x83, "x")));                           // reserved data opcode
  EXPECT_TRUE(fails(server_frame(0x8B, "x")));                           // reserved control opcode
  EXPECT_TRUE(fails(server_frame(0x09, "x")));                           // fragmented ping
  EXPECT_TRUE(fails(server_frame(0x89, std::string(126, 'p'))));         // control frame > 125
  EXPECT_TRUE(fails(server_frame(0x80, "x")));                           // continuation with no start
  EXPECT_TRUE(fails(server_frame(0x01, "a") + server_frame(0x81, "b")));  // new message mid-fragments
  EXPECT_TRUE(fails(server_frame(0x81, std::string(2000, 'x')), 1000));   // over the bound
  EXPECT_TRUE(fails(server_frame(0x01, std::string(600, 'x')) + server_frame(0x80, std::string(600, 'x')), 1000));
  // A 64-bit length far past the bound fails at once, without waiting for the bytes.
  EXPECT_TRUE(fails(std::string("\x81\x7f\x7f\xff\xff\xff\xff\xff\xff\xff", 10)));
  EXPECT_FALSE(fails(server_frame(0x81, "ok")));
}

TEST(IdentityCommands, FullIdentityInOrder) {
  BrowserIdentity identity;
  identity.viewport = Viewport{1280, 720};
  identity.user_agent = "Kindling/1";
  identity.locale = "de-DE";
  identity.timezone = "Europe/Berlin";
  auto commands = page_identity_commands(identity, "HeadlessChrome/156");
  ASSERT_EQ(commands.size(), 4u);
  EXPECT_EQ(commands[0].method, "Emulation.setDeviceMetricsOverride");
  EXPECT_EQ(commands[0].params,
            (json{{"width", 1280}, {"height", 720}, {"deviceScaleFactor", 1}, {"mobile", false},
                  {"screenWidth", 1280}, {"screenHeight", 720}}));
  EXPECT_EQ(commands[1].method, "Emulation.setUserAgentOverride");
  EXPECT_EQ(commands[1].params, (json{{"userAgent", "Kindling/1"}, {"acceptLanguage", "de-DE"}}));
  EXPECT_EQ(commands[2].method, "Emulation.setLocaleOverride");
  EXPECT_EQ(commands[2].params, (json{{"locale", "de-DE"}}));
  EXPECT_EQ(commands[3].method, "Emulation.setTimezoneOverride");
  EXPECT_EQ(commands[3].params, (json{{"timezoneId", "Europe/Berlin"}}));
  EXPECT_NE(commands[3].what.find("Europe/Berlin"), std::string::npos);
}

TEST(IdentityCommands, LocaleAloneKeepsTheBrowsersUserAgent) {
  BrowserIdentity identity;
  identity.locale = "fr";
  auto commands = page_identity_commands(identity, "HeadlessChrome/156");
  ASSERT_EQ(commands.size(), 2u);
  EXPECT_EQ(commands[0].params, (json{{"userAgent", "HeadlessChrome/156"}, {"acceptLanguage", "fr"}}));
  BrowserIdentity ua_only;
  ua_only.user_agent = "X";
  auto ua = page_identity_commands(ua_only, "HeadlessChrome/156");
  ASSERT_EQ(ua.size(), 1u);
  EXPECT_EQ(ua[0].params, (json{{"userAgent", "X"}}));
  EXPECT_TRUE(page_identity_commands(BrowserIdentity{}, "ua").empty());
}

TEST(IdentityCommands, AutoAttachAndRequestShape) {
  auto attach = auto_attach_command();
  EXPECT_EQ(attach.method, "Target.setAutoAttach");
  EXPECT_EQ(attach.params, (json{{"autoAttach", true}, {"waitForDebuggerOnStart", true}, {"flatten", true}}));
  EXPECT_EQ(json::parse(cdp_request(3, attach, "")),
            (json{{"id", 3}, {"method", "Target.setAutoAttach"}, {"params", attach.params}}));
  auto in_session = json::parse(cdp_request(4, {"Runtime.runIfWaitingForDebugger", json::object(), "resume"}, "S1"));
  EXPECT_EQ(in_session["sessionId"], "S1");
  EXPECT_EQ(in_session["params"], json::object());
}
