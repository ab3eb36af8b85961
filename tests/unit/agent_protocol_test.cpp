#include "common/agent_protocol.hpp"

#include <gtest/gtest.h>

using namespace kindling::agent_protocol;
using nlohmann::json;

TEST(AgentProtocol, FrameRoundTrip) {
  FrameDecoder d;
  std::string wire = encode_frame(json{{"type", "ping"}, {"id", 7}}) + encode_frame(json{{"type", "shutdown"}});
  // Feed one byte at a time: frames must reassemble across arbitrary splits.
  for (char c : wire) ASSERT_TRUE(d.feed(std::string_view(&c, 1)).ok());
  auto a = d.next();
  ASSERT_TRUE(a && a->ok());
  auto m = parse_host_message(a->value());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(std::get<Ping>(m.value()).id, 7u);
  auto b = d.next();
  ASSERT_TRUE(b && b->ok());
  EXPECT_TRUE(std::holds_alternative<Shutdown>(parse_host_message(b->value()).value()));
  EXPECT_FALSE(d.next().has_value());
}

TEST(AgentProtocol, OversizedFrameHeaderPoisonsDecoder) {
  FrameDecoder d;
  std::string header("\x7f\xff\xff\xff", 4);
  EXPECT_FALSE(d.feed(header).ok());
  EXPECT_FALSE(d.feed("x").ok());
  EXPECT_FALSE(d.next().has_value());
}

TEST(AgentProtocol, InvalidJsonIsAnError) {
  FrameDecoder d;
  std::string body = "{not json";
  std::string frame = std::string("\0\0\0", 3) + static_cast<char>(body.size()) + body;
  ASSERT_TRUE(d.feed(frame).ok());
  auto r = d.next();
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->ok());
}

TEST(AgentProtocol, ReadyValidation) {
  Ready r;
  r.browser = {"Chrome/156", "1.3", "UA", "/devtools/browser/abc"};
  r.chromium_sandbox = false;
  r.sandbox_note = "kernel refused user namespaces";
  auto parsed = parse_agent_message(to_json(AgentMessage(r)));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  auto& got = std::get<Ready>(parsed.value());
  EXPECT_EQ(got.browser.websocket_path, "/devtools/browser/abc");
  EXPECT_FALSE(got.chromium_sandbox);

  json bad = to_json(AgentMessage(r));
  bad["browser"]["webSocketPath"] = "/devtools/page/abc";
  EXPECT_FALSE(parse_agent_message(bad).ok());
  bad["browser"]["webSocketPath"] = "/devtools/browser/abc?x=1";
  EXPECT_FALSE(parse_agent_message(bad).ok());
  bad = to_json(AgentMessage(r));
  bad.erase("chromiumSandbox");
  EXPECT_FALSE(parse_agent_message(bad).ok());
  bad = to_json(AgentMessage(r));
  bad["browser"]["version"] = std::string(5000, 'x');
  EXPECT_FALSE(parse_agent_message(bad).ok());
}

TEST(AgentProtocol, UnknownTypesAndBadFieldsRejected) {
  EXPECT_FALSE(parse_agent_message(json{{"type", "launch_missiles"}}).ok());
  EXPECT_FALSE(parse_agent_message(json{{"type", 3}}).ok());
  EXPECT_FALSE(parse_agent_message(json::array()).ok());
  EXPECT_FALSE(parse_agent_message(json{{"type", "pong"}, {"id", -1}}).ok());
  EXPECT_FALSE(parse_agent_message(json{{"type", "browser_exited"}, {"exitCode", "x"}}).ok());
  EXPECT_TRUE(parse_agent_message(json{{"type", "browser_exited"}, {"signal", 9}}).ok());
}

TEST(AgentProtocol, Preambles) {
  EXPECT_EQ(parse_preamble("KINDLING/1 CONTROL\n").value(), ConnectionKind::kControl);
  EXPECT_EQ(parse_preamble("KINDLING/1 CDP\n").value(), ConnectionKind::kCdp);
  EXPECT_FALSE(parse_preamble("KINDLING/2 CDP\n").ok());
  EXPECT_FALSE(parse_preamble(std::string(100, 'A')).ok());
}

TEST(AgentProtocol, ApplyIdentityRoundTrip) {
  kindling::BrowserIdentity identity;
  identity.viewport = kindling::Viewport{1280, 720};
  identity.user_agent = "Kindling/1";
  identity.locale = "de-DE";
  identity.timezone = "Europe/Berlin";
  json j = to_json(HostMessage(ApplyIdentity{42, identity}));
  EXPECT_EQ(j["type"], "apply_identity");
  auto parsed = parse_host_message(j);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const auto& a = std::get<ApplyIdentity>(parsed.value());
  EXPECT_EQ(a.id, 42u);
  EXPECT_EQ(a.identity, identity);

  kindling::BrowserIdentity only_tz;
  only_tz.timezone = "UTC";
  json k = to_json(HostMessage(ApplyIdentity{1, only_tz}));
  EXPECT_FALSE(k.contains("viewport"));
  EXPECT_FALSE(k.contains("userAgent"));
  EXPECT_EQ(std::get<ApplyIdentity>(parse_host_message(k).value()).identity, only_tz);
}

TEST(AgentProtocol, ApplyIdentityValidation) {
  auto bad = [](const char* text) {
    json j = json::parse(text);
    j["type"] = "apply_identity";
    if (!j.contains("id")) j["id"] = 1u;
    return !parse_host_message(j).ok();
  };
  EXPECT_TRUE(bad("{}"));  // nothing to apply
  EXPECT_TRUE(bad(R"({"id":-1,"locale":"de"})"));
  EXPECT_TRUE(bad(R"({"viewport":{"width":50,"height":500}})"));
  EXPECT_TRUE(bad(R"({"viewport":{"width":500}})"));
  EXPECT_TRUE(bad(R"({"viewport":"800x600"})"));
  EXPECT_TRUE(bad(R"({"userAgent":"a\nb"})"));
  EXPECT_TRUE(bad(R"({"userAgent":7})"));
  EXPECT_TRUE(bad(R"({"locale":"not a locale"})"));
  EXPECT_TRUE(bad(R"({"timezone":"../x"})"));
  EXPECT_FALSE(bad(R"({"viewport":{"width":500,"height":500}})"));
  EXPECT_FALSE(bad(R"({"locale":"de"})"));
}

TEST(AgentProtocol, IdentityAppliedRoundTripAndValidation) {
  json ok = to_json(AgentMessage(IdentityApplied{9, true, ""}));
  EXPECT_FALSE(ok.contains("error"));
  auto a = parse_agent_message(ok);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(std::get<IdentityApplied>(a.value()).ok);
  EXPECT_EQ(std::get<IdentityApplied>(a.value()).id, 9u);
  json failed = to_json(AgentMessage(IdentityApplied{3, false, "Chromium refused timezone 'X/Y': Invalid timezone ID"}));
  auto f = parse_agent_message(failed);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(std::get<IdentityApplied>(f.value()).ok);
  EXPECT_EQ(std::get<IdentityApplied>(f.value()).error, "Chromium refused timezone 'X/Y': Invalid timezone ID");
  EXPECT_FALSE(parse_agent_message(json{{"type", "identity_applied"}, {"id", 1}}).ok());
  EXPECT_FALSE(parse_agent_message(json{{"type", "identity_applied"}, {"id", 1}, {"ok", "yes"}}).ok());
  EXPECT_FALSE(parse_agent_message(json{{"type", "identity_applied"}, {"id", 1}, {"ok", false}}).ok());
  EXPECT_FALSE(parse_agent_message(json{{"type", "identity_applied"}, {"ok", true}}).ok());
}

TEST(AgentProtocol, CloseBrowserRoundTrips) {
  auto parsed = parse_host_message(json{{"type", "close_browser"}});
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_TRUE(std::holds_alternative<CloseBrowser>(parsed.value()));
  EXPECT_EQ(to_json(HostMessage(CloseBrowser{})), json({{"type", "close_browser"}}));
}
