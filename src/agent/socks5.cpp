#include "agent/socks5.hpp"

namespace kindling::agent::socks5 {
namespace {

bool dotted_ipv4(std::string_view s, unsigned char out[4]) {
  int parts = 0;
  while (parts < 4) {
    auto dot = s.find('.');
    auto part = s.substr(0, dot);
    if (part.empty() || part.size() > 3) return false;
    unsigned v = 0;
    for (char c : part) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > 255) return false;
    out[parts++] = static_cast<unsigned char>(v);
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return parts == 4 && s.find('.') == std::string_view::npos;
}

}  // namespace

std::string greeting(bool with_credentials) {
  return with_credentials ? std::string("\x05\x01\x02", 3) : std::string("\x05\x01\x00", 3);
}

Result<int> parse_method_choice(std::string_view reply, bool with_credentials) {
  if (reply.size() != 2 || reply[0] != 5) return make_error("the upstream is not a SOCKS5 proxy");
  auto method = static_cast<unsigned char>(reply[1]);
  if (method == 0xff || method != (with_credentials ? 2 : 0))
    return make_error(with_credentials ? "the SOCKS5 proxy does not accept username/password authentication"
                                       : "the SOCKS5 proxy requires authentication (no username/password given)");
  return static_cast<int>(method);
}

std::string auth_request(std::string_view username, std::string_view password) {
  std::string out("\x01", 1);
  out += static_cast<char>(username.size() & 0xff);
  out.append(username.substr(0, 255));
  out += static_cast<char>(password.size() & 0xff);
  out.append(password.substr(0, 255));
  return out;
}

Status parse_auth_reply(std::string_view reply) {
  if (reply.size() != 2 || reply[0] != 1) return make_error("the SOCKS5 proxy answered authentication wrongly");
  if (reply[1] != 0) return make_error("the SOCKS5 proxy refused the username/password");
  return ok_status();
}

std::string connect_request(std::string_view host, std::uint16_t port) {
  std::string out("\x05\x01\x00", 3);
  unsigned char v4[4];
  if (dotted_ipv4(host, v4)) {
    out += '\x01';
    out.append(reinterpret_cast<const char*>(v4), 4);
  } else {
    out += '\x03';
    out += static_cast<char>(host.size() & 0xff);
    out.append(host.substr(0, 255));
  }
  out += static_cast<char>(port >> 8);
  out += static_cast<char>(port & 0xff);
  return out;
}

Result<std::size_t> reply_length(std::string_view prefix) {
  if (prefix.size() < 5) return std::size_t{0};
  if (prefix[0] != 5) return make_error("the upstream is not a SOCKS5 proxy");
  switch (prefix[3]) {
    case 1: return std::size_t{10};
    case 4: return std::size_t{22};
    case 3: return std::size_t{7} + static_cast<unsigned char>(prefix[4]);
    default: return make_error("the SOCKS5 proxy sent a malformed reply");
  }
}

Status parse_connect_reply(std::string_view reply) {
  auto length = reply_length(reply);
  if (!length) return length.error();
  if (*length == 0 || reply.size() != *length) return make_error("the SOCKS5 proxy sent a malformed reply");
  static constexpr const char* kReasons[] = {
      "succeeded", "general failure", "connection not allowed by ruleset", "network unreachable",
      "host unreachable", "connection refused", "TTL expired", "command not supported", "address type not supported"};
  auto code = static_cast<unsigned char>(reply[1]);
  if (code == 0) return ok_status();
  return make_error(std::string("the SOCKS5 proxy could not connect: ") +
                    (code < 9 ? kReasons[code] : "unknown error " + std::to_string(code)));
}

}  // namespace kindling::agent::socks5
