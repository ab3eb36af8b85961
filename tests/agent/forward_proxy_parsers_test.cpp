// The forward proxy's parsers: Chromium's proxy requests, upstream replies,
// SOCKS5 messages. The bytes come from pages (via Chromium) and from
// upstream servers: the refusals matter as much as the happy paths.
#include <gtest/gtest.h>

#include "agent/proxy_request.hpp"
#include "agent/socks5.hpp"

namespace kindling::agent {
namespace {

TEST(ProxyRequest, ConnectNamesHostAndPort) {
  auto r = parse_proxy_request("CONNECT Example.COM:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->connect);
  EXPECT_EQ(r->host, "example.com");
  EXPECT_EQ(r->port, 443);
  auto v6 = parse_proxy_request("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_FALSE(parse_proxy_request("CONNECT example.com HTTP/1.1\r\n\r\n"));  // no port
  EXPECT_FALSE(parse_proxy_request("CONNECT example.com:0 HTTP/1.1\r\n\r\n"));
  EXPECT_FALSE(parse_proxy_request("CONNECT exa mple.com:1 HTTP/1.1\r\n\r\n"));
}

TEST(ProxyRequest, PlainHttpIsRewrittenForOneRequest) {
  auto r = parse_proxy_request(
      "POST http://site.test:8080/a/b?q=1#frag HTTP/1.1\r\nHost: site.test:8080\r\nProxy-Connection: keep-alive\r\n"
      "Proxy-Authorization: Basic eDp5\r\nContent-Length: 5\r\nConnection: keep-alive\r\nCookie: a=b\r\n\r\n");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->connect);
  EXPECT_EQ(r->host, "site.test");
  EXPECT_EQ(r->port, 8080);
  EXPECT_EQ(r->body_bytes, 5u);
  EXPECT_EQ(r->origin_head,
            "POST /a/b?q=1 HTTP/1.1\r\nHost: site.test:8080\r\nContent-Length: 5\r\nCookie: a=b\r\n"
            "Connection: close\r\n\r\n");
  EXPECT_TRUE(r->absolute_head.starts_with("POST http://site.test:8080/a/b?q=1#frag HTTP/1.1\r\n"));
  EXPECT_EQ(r->absolute_head.find("Proxy-"), std::string::npos);
  auto authed = with_proxy_authorization(r->absolute_head, "user", "pa:ss");
  EXPECT_NE(authed.find("\r\nProxy-Authorization: Basic dXNlcjpwYTpzcw==\r\n"), std::string::npos);
}

TEST(ProxyRequest, RefusesWhatIsNotAProxyRequest) {
  EXPECT_FALSE(parse_proxy_request("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));  // origin form
  EXPECT_FALSE(parse_proxy_request("GET https://x/ HTTP/1.1\r\n\r\n"));
  EXPECT_FALSE(parse_proxy_request("GET http://user:pw@x/ HTTP/1.1\r\n\r\n"));
  EXPECT_FALSE(parse_proxy_request("GET http://x/ HTTP/2\r\n\r\n"));
  EXPECT_FALSE(parse_proxy_request("GET http://x/ HTTP/1.1\r\nBad Header: 1\r\n\r\n"));
  EXPECT_FALSE(parse_proxy_request("GET http://x/ HTTP/1.1\r\nA: b\rc\r\n\r\n"));
  EXPECT_FALSE(parse_proxy_request(
      "POST http://x/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"));
  EXPECT_FALSE(parse_proxy_request("POST http://x/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"));
  EXPECT_FALSE(parse_proxy_request(std::string(kMaxProxyHeadBytes + 1, 'a')));
  auto chunked = parse_proxy_request("POST http://x/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  ASSERT_TRUE(chunked);
  EXPECT_FALSE(chunked->body_bytes);
  // No Host header: one is made from the target.
  auto bare = parse_proxy_request("GET http://x:81 HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->origin_head, "GET / HTTP/1.0\r\nHost: x:81\r\nConnection: close\r\n\r\n");
}

TEST(ProxyRequest, ReplyStatusAndErrorPage) {
  EXPECT_EQ(*parse_reply_status("HTTP/1.1 407 Proxy Authentication Required\r\n"), 407);
  EXPECT_EQ(*parse_reply_status("HTTP/1.0 200 OK\r\n\r\n"), 200);
  EXPECT_FALSE(parse_reply_status("SSH-2.0-OpenSSH\r\n"));
  EXPECT_FALSE(parse_reply_status("HTTP/1.1 2x0 OK"));
  auto page = proxy_error_response("upstream <b>failed</b>");
  EXPECT_TRUE(page.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
  EXPECT_NE(page.find("upstream &lt;b&gt;failed&lt;/b&gt;"), std::string::npos);
}

TEST(ProxyRequest, LocalNamesAreRecognised) {
  for (auto h : {"localhost", "a.LOCALHOST", "127.0.0.1", "127.9.9.9", "0.0.0.0", "::1", "::", "::ffff:127.0.0.1"})
    EXPECT_TRUE(is_local_host_name(h)) << h;
  for (auto h : {"example.com", "10.0.0.1", "203.0.113.5", "localhost.example.com"})
    EXPECT_FALSE(is_local_host_name(h)) << h;
}

TEST(Base64, MatchesRfc4648) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(Socks5, HandshakeMessages) {
  EXPECT_EQ(socks5::greeting(true), std::string("\x05\x01\x02", 3));
  EXPECT_EQ(socks5::greeting(false), std::string("\x05\x01\x00", 3));
  EXPECT_TRUE(socks5::parse_method_choice(std::string("\x05\x02", 2), true));
  EXPECT_FALSE(socks5::parse_method_choice(std::string("\x05\xff", 2), true));
  EXPECT_FALSE(socks5::parse_method_choice(std::string("\x05\x02", 2), false));
  EXPECT_FALSE(socks5::parse_method_choice(std::string("\x04\x00", 2), false));
  EXPECT_EQ(socks5::auth_request("ab", "c"), std::string("\x01\x02" "ab" "\x01" "c", 6));
  EXPECT_TRUE(socks5::parse_auth_reply(std::string("\x01\x00", 2)));
  auto refused = socks5::parse_auth_reply(std::string("\x01\x01", 2));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("refused the username/password"), std::string::npos);
  EXPECT_EQ(socks5::connect_request("10.1.2.3", 80), std::string("\x05\x01\x00\x01\x0a\x01\x02\x03\x00\x50", 10));
  EXPECT_EQ(socks5::connect_request("a.io", 443), std::string("\x05\x01\x00\x03\x04" "a.io" "\x01\xbb", 11));
}

TEST(Socks5, ConnectReplies) {
  std::string ok("\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
  EXPECT_EQ(*socks5::reply_length(ok.substr(0, 5)), 10u);
  EXPECT_EQ(*socks5::reply_length(ok.substr(0, 4)), 0u);
  EXPECT_TRUE(socks5::parse_connect_reply(ok));
  std::string refused("\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00", 10);
  auto r = socks5::parse_connect_reply(refused);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("connection refused"), std::string::npos);
  EXPECT_EQ(*socks5::reply_length(std::string("\x05\x00\x00\x03\x07", 5)), 14u);
  EXPECT_FALSE(socks5::reply_length(std::string("\x05\x00\x00\x09\x00", 5)));
  EXPECT_FALSE(socks5::parse_connect_reply(ok.substr(0, 9)));
}

}  // namespace
}  // namespace kindling::agent
