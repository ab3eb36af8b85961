#include "common/upstream_proxy.hpp"

#include <algorithm>

namespace kindling {
namespace {

Error bad(std::string_view field, const std::string& what) {
  return make_error("'" + std::string(field) + "' " + what, "bad_request");
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool is_ipv4(std::string_view s) {
  int parts = 0;
  while (true) {
    auto dot = s.find('.');
    auto part = s.substr(0, dot);
    if (part.empty() || part.size() > 3) return false;
    int v = 0;
    for (char c : part) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    if (v > 255 || (part.size() > 1 && part[0] == '0')) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return parts == 4;
}

// RFC 1123 host names: labels of letters, digits and '-', not starting or
// ending with '-'; '_' allowed since real names carry it.
bool is_dns_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxProxyHostBytes) return false;
  while (true) {
    auto dot = s.find('.');
    auto label = s.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        return false;
    if (dot == std::string_view::npos) return true;
    s.remove_prefix(dot + 1);
  }
}

bool printable(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

Status parse_server(std::string_view text, std::string_view field, UpstreamProxy& out) {
  auto fail = [&] {
    return bad(field, "must be \"http://host:port\" or \"socks5://host:port\" (no path, no credentials: use "
                      "'username' and 'password')");
  };
  if (text.starts_with("http://")) {
    out.scheme = UpstreamProxy::Scheme::kHttp;
    text.remove_prefix(7);
  } else if (text.starts_with("socks5://")) {
    out.scheme = UpstreamProxy::Scheme::kSocks5;
    text.remove_prefix(9);
  } else {
    return fail();
  }
  if (text.ends_with("/")) text.remove_suffix(1);
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return fail();
  auto host = text.substr(0, colon);
  auto port = text.substr(colon + 1);
  if (!is_ipv4(host) && !is_dns_name(host)) return fail();
  if (port.empty() || port.size() > 5) return fail();
  unsigned v = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return fail();
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v == 0 || v > 65535) return fail();
  out.host = to_lower(host);
  out.port = static_cast<std::uint16_t>(v);
  return ok_status();
}

Status parse_bypass_rule(std::string_view rule, std::string_view field, UpstreamProxy& out) {
  std::string_view name = rule;
  if (name.starts_with("*.")) name.remove_prefix(2);
  else if (name.starts_with(".")) name.remove_prefix(1);
  bool wildcard = name.size() != rule.size();
  if (!(is_dns_name(name) || (!wildcard && is_ipv4(name))))
    return bad(field, "entries must be host names (\"example.com\"), subdomain patterns (\"*.example.com\") or "
                      "IPv4 addresses");
  out.bypass.push_back(wildcard ? "." + to_lower(name) : to_lower(name));
  return ok_status();
}

}  // namespace

std::string UpstreamProxy::server() const {
  return std::string(scheme == Scheme::kHttp ? "http://" : "socks5://") + host + ":" + std::to_string(port);
}

Result<UpstreamProxy> parse_upstream_proxy(const nlohmann::json& j, std::string_view field) {
  const std::string f(field);
  if (!j.is_object()) return bad(f, "must be an object {server, username, password, bypass}");
  UpstreamProxy proxy;
  bool have_server = false, have_user = false, have_password = false;
  for (auto& [key, value] : j.items()) {
    const std::string name = f + "." + key.substr(0, 64);
    if (key == "server") {
      if (!value.is_string()) return bad(name, "must be a string");
      if (auto st = parse_server(value.get_ref<const std::string&>(), name, proxy); !st) return st.error();
      have_server = true;
    } else if (key == "username" || key == "password") {
      if (!value.is_string()) return bad(name, "must be a string");
      const auto& s = value.get_ref<const std::string&>();
      // Never echo the value: it is a secret.
      if (s.empty() || s.size() > kMaxProxyCredentialBytes)
        return bad(name, "must be 1 to " + std::to_string(kMaxProxyCredentialBytes) + " bytes");
      if (!printable(s)) return bad(name, "must not contain control characters");
      if (key == "username" && s.find(':') != std::string::npos) return bad(name, "must not contain ':'");
      (key == "username" ? proxy.username : proxy.password) = s;
      (key == "username" ? have_user : have_password) = true;
    } else if (key == "bypass") {
      if (!value.is_array()) return bad(name, "must be an array of strings");
      if (value.size() > kMaxProxyBypassRules)
        return bad(name, "has more than " + std::to_string(kMaxProxyBypassRules) + " entries");
      for (const auto& rule : value) {
        if (!rule.is_string()) return bad(name, "must be an array of strings");
        if (auto st = parse_bypass_rule(rule.get_ref<const std::string&>(), name, proxy); !st) return st.error();
      }
    } else {
      return make_error("unknown field '" + name + "'", "bad_request");
    }
  }
  if (!have_server) return bad(f + ".server", "is required");
  if (have_user != have_password) return bad(f, "needs both 'username' and 'password', or neither");
  return proxy;
}

nlohmann::json to_protocol_json(const UpstreamProxy& proxy) {
  nlohmann::json j = {{"server", proxy.server()}, {"bypass", proxy.bypass}};
  if (!proxy.username.empty()) {
    j["username"] = proxy.username;
    j["password"] = proxy.password;
  }
  return j;
}

nlohmann::json to_public_json(const UpstreamProxy& proxy) {
  return {{"server", proxy.server()}, {"bypass", proxy.bypass}, {"authenticated", !proxy.username.empty()}};
}

bool proxy_bypassed(const UpstreamProxy& proxy, std::string_view host) {
  if (host.size() > kMaxProxyHostBytes + 2) return false;
  std::string h = to_lower(host);
  if (h.ends_with(".")) h.pop_back();  // "example.com." is "example.com"
  for (const auto& rule : proxy.bypass) {
    if (rule.front() == '.') {
      if (h.size() > rule.size() && h.ends_with(rule)) return true;
    } else if (h == rule) {
      return true;
    }
  }
  return false;
}

}  // namespace kindling
