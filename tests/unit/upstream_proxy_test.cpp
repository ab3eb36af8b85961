// The session's upstream proxy as the API and the agent protocol parse it:
// strict refusals with clear messages, never an echoed secret.
#include <gtest/gtest.h>

#include "common/agent_protocol.hpp"
#include "common/upstream_proxy.hpp"
#include "gateway/api_request.hpp"

namespace kindling {
namespace {

using nlohmann::json;

TEST(UpstreamProxy, ParsesHttpAndSocks5) {
  auto p = parse_upstream_proxy(json::parse(
      R"({"server":"socks5://Proxy.Example:1080","username":"u","password":"p w","bypass":["a.test","*.B.test",".c.test","203.0.113.5"]})"));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->scheme, UpstreamProxy::Scheme::kSocks5);
  EXPECT_EQ(p->server(), "socks5://proxy.example:1080");
  EXPECT_EQ(p->password, "p w");
  EXPECT_TRUE(proxy_bypassed(*p, "A.test"));
  EXPECT_TRUE(proxy_bypassed(*p, "x.b.test"));
  EXPECT_FALSE(proxy_bypassed(*p, "b.test"));
  EXPECT_TRUE(proxy_bypassed(*p, "deep.x.c.test"));
  EXPECT_TRUE(proxy_bypassed(*p, "203.0.113.5"));
  EXPECT_FALSE(proxy_bypassed(*p, "xa.test"));
  auto h = parse_upstream_proxy(json::parse(R"({"server":"http://203.0.113.30:3128"})"));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->scheme, UpstreamProxy::Scheme::kHttp);
  EXPECT_EQ(h->port, 3128);
}

TEST(UpstreamProxy, RefusesWithMessagesThatNameTheField) {
  const char* bad[] = {
      R"("http://x:1")",
      R"({})",
      R"({"server":"ftp://x:1"})",
      R"({"server":"http://x"})",
      R"({"server":"http://x:0"})",
      R"({"server":"http://x:65536"})",
      R"({"server":"http://u:p@x:1"})",
      R"({"server":"http://x:1/path"})",
      R"({"server":"http://[::1]:1"})",
      R"({"server":"http://x:1","username":"u"})",
      R"({"server":"http://x:1","password":"p"})",
      R"({"server":"http://x:1","username":"a:b","password":"p"})",
      R"({"server":"http://x:1","username":"u","password":"p\r\nX: y"})",
      R"({"server":"http://x:1","username":"","password":"p"})",
      R"({"server":"http://x:1","bypass":"a.test"})",
      R"({"server":"http://x:1","bypass":["a b"]})",
      R"({"server":"http://x:1","bypass":["*.*"]})",
      R"({"server":"http://x:1","bypass":[1]})",
      R"({"server":"http://x:1","other":1})",
  };
  for (const char* text : bad) {
    auto p = parse_upstream_proxy(json::parse(text));
    ASSERT_FALSE(p) << text;
    EXPECT_EQ(p.error().code, "bad_request");
    EXPECT_NE(p.error().message.find("'proxy"), std::string::npos) << p.error().message;
  }
  auto secret = parse_upstream_proxy(json::parse(R"({"server":"http://x:1","username":"u","password":"s3cr3t\u0001"})"));
  ASSERT_FALSE(secret);
  EXPECT_EQ(secret.error().message.find("s3cr3t"), std::string::npos);
}

TEST(UpstreamProxy, PublicViewHasNoCredentialsAndProtocolRoundTrips) {
  auto p = parse_upstream_proxy(json::parse(R"({"server":"http://x:1","username":"user","password":"s3cr3t"})"));
  ASSERT_TRUE(p);
  auto pub = to_public_json(*p).dump();
  EXPECT_EQ(pub.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(pub.find("user"), std::string::npos);
  EXPECT_NE(pub.find("\"authenticated\":true"), std::string::npos);
  agent_protocol::SetProxy set{7, *p};
  auto back = agent_protocol::parse_host_message(agent_protocol::to_json(agent_protocol::HostMessage(set)));
  ASSERT_TRUE(back);
  auto* again = std::get_if<agent_protocol::SetProxy>(&back.value());
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->id, 7u);
  EXPECT_EQ(again->proxy, *p);
  EXPECT_FALSE(agent_protocol::parse_host_message(json::parse(R"({"type":"set_proxy","id":1})")));
  auto failed = agent_protocol::parse_agent_message(json::parse(R"({"type":"proxy_failed","message":"x"})"));
  ASSERT_TRUE(failed);
  EXPECT_TRUE(std::holds_alternative<agent_protocol::ProxyFailed>(failed.value()));
}

TEST(CreateSessionBody, ProxyIsParsedStrictly) {
  control::SessionLimits limits;
  auto ok = gateway::parse_create_session(R"({"proxy":{"server":"socks5://203.0.113.31:1080"}})", limits);
  ASSERT_TRUE(ok) << ok.error().message;
  ASSERT_TRUE(ok->proxy);
  EXPECT_EQ(ok->proxy->port, 1080);
  EXPECT_TRUE(gateway::parse_create_session(R"({"proxy":null})", limits));
  auto bad = gateway::parse_create_session(R"({"proxy":{"server":"https://x:1"}})", limits);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "bad_request");
}

}  // namespace
}  // namespace kindling
