// The client half of SOCKS5 (RFC 1928) with username/password
// authentication (RFC 1929), as pure functions: what the agent's forward
// proxy sends to a SOCKS5 upstream and how it reads the answers. The
// upstream is a server on the internet: its replies are bounded and checked.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace kindling::agent::socks5 {

// Greeting: version 5, offering user/password (2) when we have credentials,
// "no authentication" (0) otherwise.
std::string greeting(bool with_credentials);
// The server's 2-byte method choice: the method, or an error naming why.
Result<int> parse_method_choice(std::string_view reply, bool with_credentials);
// RFC 1929 request; both at most 255 bytes (checked by UpstreamProxy).
std::string auth_request(std::string_view username, std::string_view password);
// The 2-byte RFC 1929 answer: ok, or "refused the username/password".
Status parse_auth_reply(std::string_view reply);
// CONNECT to host:port; a dotted IPv4 is sent as an address, anything else
// as a domain name the upstream resolves (so DNS follows the proxy too).
std::string connect_request(std::string_view host, std::uint16_t port);
// How many bytes the CONNECT reply has, known once its first 5 bytes are
// in: 0 if more are needed to tell, or an error for a malformed reply.
Result<std::size_t> reply_length(std::string_view prefix);
// A complete reply: ok for "succeeded", else the RFC 1928 reason.
Status parse_connect_reply(std::string_view reply);

}  // namespace kindling::agent::socks5
