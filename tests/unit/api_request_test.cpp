#include "gateway/api_request.hpp"

#include <gtest/gtest.h>

#include "gateway/discovery.hpp"

using namespace kindling;
using namespace kindling::gateway;

TEST(ParseTarget, SplitsSegmentsAndQuery) {
  auto t = parse_target("/v1/sessions/abc/json/version/?token=a%2Bb&x=1+2");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->segments, (std::vector<std::string>{"v1", "sessions", "abc", "json", "version"}));
  EXPECT_TRUE(t->trailing_slash);
  EXPECT_EQ(t->query.at("token"), "a+b");
  EXPECT_EQ(t->query.at("x"), "1 2");
}

TEST(ParseTarget, RejectsBadTargets) {
  EXPECT_FALSE(parse_target("").ok());
  EXPECT_FALSE(parse_target("http://evil/").ok());
  EXPECT_FALSE(parse_target("/a/%zz").ok());
  EXPECT_FALSE(parse_target("/a/%2").ok());
  EXPECT_FALSE(parse_target("/a/%00").ok());
  EXPECT_FALSE(parse_target("/a/../b").ok());
  EXPECT_FALSE(parse_target("/a/%2e%2e/b").ok());
  EXPECT_FALSE(parse_target("/a/b%2fc").ok());
  EXPECT_FALSE(parse_target("/" + std::string(5000, 'a')).ok());
  std::string many;
  for (int i = 0; i < 20; ++i) many += "/s";
  EXPECT_FALSE(parse_target(many).ok());
}

TEST(CreateSessionBody, DefaultsAndValidation) {
  control::SessionLimits limits;
  limits.max_timeout_seconds = 100;
  EXPECT_EQ(parse_create_session("", limits)->timeout_seconds, 0);
  EXPECT_EQ(parse_create_session("  \n", limits)->timeout_seconds, 0);
  auto ok = parse_create_session(R"({"timeoutSeconds": 30, "idleTimeoutSeconds": 5})", limits);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->timeout_seconds, 30);
  EXPECT_EQ(ok->idle_timeout_seconds, 5);
  for (const char* bad : {"{", "[]", "null", R"({"timeoutSeconds": "30"})", R"({"timeoutSeconds": 0})",
                          R"({"timeoutSeconds": 101})", R"({"timeoutSeconds": 1.5})", R"({"idleTimeoutSeconds": -1})",
                          R"({"what": 1})"}) {
    auto r = parse_create_session(bad, limits);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, "bad_request") << bad;
    }
  }
}

TEST(HostHeader, OnlyPlausibleHostsAreEchoed) {
  EXPECT_EQ(sanitize_host_header("127.0.0.1:8600").value(), "127.0.0.1:8600");
  EXPECT_EQ(sanitize_host_header("[::1]:80").value(), "[::1]:80");
  EXPECT_FALSE(sanitize_host_header("evil/path").has_value());
  EXPECT_FALSE(sanitize_host_header("a b").has_value());
  EXPECT_FALSE(sanitize_host_header("").has_value());
}

TEST(Discovery, RewritesDebuggerUrlsThroughTheGateway) {
  auto body = nlohmann::json::parse(R"([
    {"id":"P1","type":"page","webSocketDebuggerUrl":"ws://127.0.0.1:39393/devtools/page/P1",
     "devtoolsFrontendUrl":"/devtools/inspector.html?ws=127.0.0.1:39393/devtools/page/P1"},
    {"id":"X","webSocketDebuggerUrl":"ws://127.0.0.1:1/elsewhere"}])");
  auto out = rewrite_discovery(body, "ws://gw:8600/v1/sessions/S", "TOK");
  EXPECT_EQ(out[0]["webSocketDebuggerUrl"], "ws://gw:8600/v1/sessions/S/devtools/page/P1?token=TOK");
  EXPECT_FALSE(out[0].contains("devtoolsFrontendUrl"));
  EXPECT_FALSE(out[1].contains("webSocketDebuggerUrl"));
  auto version = rewrite_discovery(
      nlohmann::json{{"Browser", "Chrome/156"}, {"webSocketDebuggerUrl", "ws://127.0.0.1:5/devtools/browser/B"}},
      "ws://h/v1/sessions/S", "T");
  EXPECT_EQ(version["webSocketDebuggerUrl"], "ws://h/v1/sessions/S/devtools/browser/B?token=T");
  EXPECT_EQ(version["Browser"], "Chrome/156");
}
