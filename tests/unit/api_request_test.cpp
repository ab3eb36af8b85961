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

TEST(CreateSessionBody, RefusesAKeyGivenTwice) {
  control::SessionLimits limits;
  for (const char* twice : {R"({"timeoutSeconds": 30, "timeoutSeconds": 60})",
                            R"({"proxy": {"server": "http://a:1", "server": "http://b:2"}})"}) {
    auto r = parse_create_session(twice, limits);
    ASSERT_FALSE(r.ok()) << twice;
    EXPECT_EQ(r.error().code, "bad_request");
    EXPECT_NE(r.error().message.find("twice"), std::string::npos) << r.error().message;
  }
  // The same key in two different objects is not a duplicate.
  auto ok = parse_create_session(
      R"({"viewport": {"width": 800, "height": 600}, "proxy": {"server": "http://a:1"}, "timeoutSeconds": 9})", limits);
  EXPECT_TRUE(ok.ok()) << (ok.ok() ? "" : ok.error().message);
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

TEST(CreateSessionBody, IdentityOptions) {
  control::SessionLimits limits;
  auto ok = parse_create_session(
      R"j({"viewport":{"width":1280,"height":720},"userAgent":"Kindling/1 (test)","locale":"de-DE","timezone":"Europe/Berlin"})j",
      limits);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  const auto& id = ok->identity;
  ASSERT_TRUE(id.viewport.has_value());
  EXPECT_EQ(id.viewport->width, 1280);
  EXPECT_EQ(id.viewport->height, 720);
  EXPECT_EQ(id.user_agent, "Kindling/1 (test)");
  EXPECT_EQ(id.locale, "de-DE");
  EXPECT_EQ(id.timezone, "Europe/Berlin");
  EXPECT_TRUE(parse_create_session("{}", limits)->identity.empty());
  for (const char* good : {"en", "de-DE", "zh-Hant-TW", "es-419", "fil-PH", "sr-Latn"})
    EXPECT_TRUE(parse_create_session(std::string(R"({"locale":")") + good + "\"}", limits).ok()) << good;
  for (const char* good : {"UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "America/Port-au-Prince"})
    EXPECT_TRUE(parse_create_session(std::string(R"({"timezone":")") + good + "\"}", limits).ok()) << good;
  EXPECT_EQ(parse_create_session(R"({"viewport":{"width":100,"height":10000}})", limits)->identity.viewport,
            (Viewport{100, 10000}));
}

TEST(CreateSessionBody, IdentityOptionsRejected) {
  control::SessionLimits limits;
  const char* bad[] = {
      R"({"viewport":{"width":99,"height":720}})",
      R"({"viewport":{"width":1280,"height":10001}})",
      R"({"viewport":{"width":1280}})",
      R"({"viewport":{"width":1280,"height":720,"depth":3}})",
      R"({"viewport":{"width":1280.5,"height":720}})",
      R"({"viewport":{"width":"1280","height":720}})",
      R"({"viewport":[1280,720]})",
      R"({"userAgent":""})",
      R"({"userAgent":5})",
      R"({"userAgent":"a\r\nX-Injected: 1"})",
      R"({"userAgent":"tab\there"})",
      R"({"locale":"german"})",
      R"({"locale":"de_DE"})",
      R"({"locale":"de-"})",
      R"({"locale":"d"})",
      R"({"locale":"de-DE-x-private"})",
      R"({"locale":""})",
      R"({"timezone":""})",
      R"({"timezone":"Europe/../../etc/passwd"})",
      R"({"timezone":"/etc/localtime"})",
      R"({"timezone":"Europe//Berlin"})",
      R"({"timezone":"Europe/Berlin "})",
      R"({"timezone":"Europe/"})",
      R"({"timezone":null})",
      R"({"screen":{"width":1}})",
  };
  for (const char* body : bad) {
    auto r = parse_create_session(body, limits);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().code, "bad_request") << body;
  }
  EXPECT_FALSE(parse_create_session(R"({"userAgent":")" + std::string(1025, 'a') + "\"}", limits).ok());
  EXPECT_TRUE(parse_create_session(R"({"userAgent":")" + std::string(1024, 'a') + "\"}", limits).ok());
  EXPECT_FALSE(parse_create_session(R"({"timezone":")" + std::string(65, 'a') + "\"}", limits).ok());
  // The message names the field, so a user knows what to fix.
  EXPECT_NE(parse_create_session(R"({"locale":"german"})", limits).error().message.find("locale"), std::string::npos);
}

TEST(CreateSessionBody, Extensions) {
  control::SessionLimits limits;
  auto ok = parse_create_session(R"({"extensions": ["0123456789abcdef01234567", "aa"]})", limits);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  ASSERT_EQ(ok->extensions.size(), 2u);
  EXPECT_EQ(ok->extensions[0].name, "0123456789abcdef01234567");
  EXPECT_TRUE(ok->extensions[0].host_dir.empty());  // the gateway resolves it
  EXPECT_TRUE(parse_create_session(R"({"extensions": []})", limits)->extensions.empty());
  auto message = [&](const std::string& body) {
    auto r = parse_create_session(body, limits);
    return r.ok() ? std::string("(accepted)") : r.error().message;
  };
  EXPECT_EQ(message(R"({"extensions": "aa"})"), "'extensions' must be an array of extension ids");
  EXPECT_EQ(message(R"({"extensions": [1]})"), "'extensions[0]' must be a string (an extension id)");
  EXPECT_EQ(message(R"({"extensions": ["aa", "../x"]})"), "'extensions[1]' is not an extension id: '../x'");
  EXPECT_EQ(message(R"({"extensions": [""]})"), "'extensions[0]' is not an extension id: ''");
  EXPECT_EQ(message(R"({"extensions": ["aa", "aa"]})"), "'extensions[1]' lists extension 'aa' twice");
  std::string many = R"({"extensions": [)";
  for (int i = 0; i < 17; ++i) many += (i ? ",\"e" : "\"e") + std::to_string(i) + "\"";
  EXPECT_EQ(message(many + "]}"), "'extensions' may list at most 16 extensions");
}

TEST(CreateSessionBody, Profile) {
  control::SessionLimits limits;
  auto ok = parse_create_session(R"({"profile": {"id": "0123456789abcdef01234567", "persist": true}})", limits);
  ASSERT_TRUE(ok) << ok.error().message;
  ASSERT_TRUE(ok->profile);
  EXPECT_EQ(ok->profile->id, "0123456789abcdef01234567");
  EXPECT_TRUE(ok->profile->persist);
  auto read_only = parse_create_session(R"({"profile": {"id": "0123456789abcdef01234567"}})", limits);
  ASSERT_TRUE(read_only);
  EXPECT_FALSE(read_only->profile->persist);  // persist defaults to false: a read-only copy
  EXPECT_FALSE(parse_create_session(R"({"profile": null})", limits)->profile);
  for (const char* bad : {R"({"profile": "0123456789abcdef01234567"})", R"({"profile": {"persist": true}})",
                          R"({"profile": {"id": "../../etc/passwd000000000"}})",
                          R"({"profile": {"id": "0123456789ABCDEF01234567"}})",
                          R"({"profile": {"id": "0123456789abcdef01234567", "persist": 1}})",
                          R"({"profile": {"id": "0123456789abcdef01234567", "other": true}})"}) {
    auto r = parse_create_session(bad, limits);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, "bad_request") << bad;
  }
}
