// A session's upstream proxy: where the agent's forward proxy sends the
// browser's traffic ({server, username, password, bypass}). One parser for
// every boundary: the HTTP API (what users send) and the agent protocol
// (what the host sends, which the agent trusts no more), so both enforce the
// same rules. In kindling_protocol: the statically linked agent uses it.
//
// Credentials stay in this struct: to_public_json() is the only view that
// leaves the process (API responses, logs), and it has no password.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace kindling {

inline constexpr std::size_t kMaxProxyHostBytes = 253;
inline constexpr std::size_t kMaxProxyCredentialBytes = 255;  // RFC 1929's one-byte lengths
inline constexpr std::size_t kMaxProxyBypassRules = 64;

struct UpstreamProxy {
  enum class Scheme { kHttp, kSocks5 };
  Scheme scheme = Scheme::kHttp;
  std::string host;  // a DNS name or a dotted IPv4 address, lower case
  std::uint16_t port = 0;
  std::string username;  // empty: no authentication
  std::string password;
  // "example.com" (that host), "*.example.com" or ".example.com" (its
  // subdomains), "203.0.113.5" (that address); lower case.
  std::vector<std::string> bypass;

  bool operator==(const UpstreamProxy&) const = default;
  std::string server() const;  // "http://host:port", never credentials
};

// Strict: unknown fields, wrong types, a server that is not
// "http://host:port" or "socks5://host:port" (no path, no userinfo), a
// username without a password (or the reverse), control characters, a ':'
// in a username, and malformed bypass rules are refused with a message that
// names the field (code "bad_request"). `field` prefixes the messages
// ("proxy").
Result<UpstreamProxy> parse_upstream_proxy(const nlohmann::json& j, std::string_view field = "proxy");

// The full object, credentials included: only for the agent protocol.
nlohmann::json to_protocol_json(const UpstreamProxy& proxy);
// {server, bypass, authenticated}: safe to show and to store.
nlohmann::json to_public_json(const UpstreamProxy& proxy);

// Whether a request for `host` (as the browser asked: a name, an IPv4
// address, or a bracketed IPv6 literal) goes direct instead of upstream.
bool proxy_bypassed(const UpstreamProxy& proxy, std::string_view host);

}  // namespace kindling
