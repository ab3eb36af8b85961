// The HTTP side of the agent's forward proxy, as pure functions (fuzzed by
// fuzz_agent_host_input): Chromium's proxy requests (CONNECT host:port and
// absolute-form plain-HTTP requests), an upstream HTTP proxy's reply head,
// and the error page Chromium gets when the upstream fails. Everything parsed
// here comes from inside the machine (a page steers Chromium's requests) or
// from an upstream on the internet: bounded, validated, never trusted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace kindling::agent {

// A request head (request line and headers, through the blank line) larger
// than this is refused: Chromium's are a few KiB.
inline constexpr std::size_t kMaxProxyHeadBytes = 64 * 1024;

struct ProxyRequest {
  bool connect = false;  // CONNECT host:port: a tunnel, the rest is opaque
  std::string host;      // lower case; an IPv6 literal without brackets
  std::uint16_t port = 0;
  // Plain HTTP only: the request re-serialised without Proxy-* and
  // hop-by-hop headers and with "Connection: close" (a forwarded connection
  // carries exactly one request), in origin form ("GET /x HTTP/1.1") for a
  // direct or SOCKS5 route and in absolute form for an HTTP upstream, which
  // takes its Proxy-Authorization from with_proxy_authorization().
  std::string origin_head;
  std::string absolute_head;
  // Plain HTTP: request body bytes that follow the head (Content-Length);
  // nothing past them is forwarded. nullopt: chunked, relayed to the end.
  std::optional<std::uint64_t> body_bytes;
};

// Where the head ends: the offset just past "\r\n\r\n", or nullopt.
std::optional<std::size_t> find_head_end(std::string_view bytes);

// Parses one complete head. Refuses origin-form targets (someone talking to
// the proxy as if it were a web server), other schemes than http, bad hosts
// and ports, and requests with both Content-Length and Transfer-Encoding.
Result<ProxyRequest> parse_proxy_request(std::string_view head);

// `head` with "Proxy-Authorization: Basic base64(user:password)" after its
// first line.
std::string with_proxy_authorization(std::string_view head, std::string_view username, std::string_view password);

// The status code of an HTTP reply head ("HTTP/1.1 200 ..."), or an error.
Result<int> parse_reply_status(std::string_view head);

// A complete "502 Bad Gateway" (or `status`) response naming the failure,
// with a small HTML page; `reason` is HTML-escaped.
std::string proxy_error_response(std::string_view reason, int status = 502);

// Whether `host` names this machine (loopback, unspecified, "localhost"):
// the proxy never connects there, so a page cannot use it to reach the
// agent's or Chromium's own loopback services.
bool is_local_host_name(std::string_view host);

std::string base64_encode(std::string_view in);

}  // namespace kindling::agent
