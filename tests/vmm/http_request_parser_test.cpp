#include "vmm/api/http_request_parser.hpp"

#include <gtest/gtest.h>

namespace kindling::vmm {
namespace {

using State = HttpParseResult::State;

TEST(HttpRequestParser, ParsesRequestWithBodyAndLeavesTheRest) {
  std::string req = "PUT /machine-config?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n";
  auto r = parse_http_request(req);
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_EQ(r.request.method, "PUT");
  EXPECT_EQ(r.request.path, "/machine-config");
  EXPECT_EQ(r.request.body, "hello");
  EXPECT_TRUE(r.request.keep_alive);
  auto next = parse_http_request(std::string_view(req).substr(r.consumed));
  ASSERT_EQ(next.state, State::kComplete);
  EXPECT_EQ(next.request.method, "GET");
}

TEST(HttpRequestParser, IncompleteUntilHeadersAndBodyArrive) {
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nHost:").state, State::kIncomplete);
  EXPECT_EQ(parse_http_request("PUT /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345").state, State::kIncomplete);
}

TEST(HttpRequestParser, ConnectionCloseAndHttp10) {
  auto a = parse_http_request("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_FALSE(a.request.keep_alive);
  auto b = parse_http_request("GET / HTTP/1.0\r\n\r\n");
  EXPECT_FALSE(b.request.keep_alive);
}

TEST(HttpRequestParser, RejectsMalformedInput) {
  struct Case {
    const char* text;
    int status;
  } cases[] = {
      {"GARBAGE\r\n\r\n", 400},
      {"GET /\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 505},
      {"GET nopath HTTP/1.1\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400},
      {"PUT / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400},
      {"PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400},
      {"PUT / HTTP/1.1\r\nContent-Length: 51201\r\n\r\n", 413},
      {"PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
      {"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
  };
  for (const auto& c : cases) {
    auto r = parse_http_request(c.text);
    EXPECT_EQ(r.state, State::kError) << c.text;
    EXPECT_EQ(r.error_status, c.status) << c.text;
  }
}

TEST(HttpRequestParser, BoundsHeaderSizeAndCount) {
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(kMaxHttpHeaderBytes, 'a');
  EXPECT_EQ(parse_http_request(big).error_status, 431);
  std::string many = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i <= kMaxHttpHeaders; ++i) many += "H" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  auto r = parse_http_request(many);
  EXPECT_EQ(r.state, State::kError);
  EXPECT_EQ(r.error_status, 431);
}

TEST(HttpRequestParser, FormatsResponses) {
  EXPECT_EQ(format_http_response(204, "", true), "HTTP/1.1 204 No Content\r\nServer: kindling-vmm\r\nConnection: keep-alive\r\n\r\n");
  std::string r = format_http_response(400, "{}", false);
  EXPECT_NE(r.find("Content-Length: 2\r\n\r\n{}"), std::string::npos);
}

}  // namespace
}  // namespace kindling::vmm
