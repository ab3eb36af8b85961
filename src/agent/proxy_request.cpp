#include "agent/proxy_request.hpp"

#include <algorithm>
#include <vector>

namespace kindling::agent {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool iequals(std::string_view a, std::string_view b) { return a.size() == b.size() && lower(a) == lower(b); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v == 0 || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

// "host", "host:port", "[v6]", "[v6]:port".
Status parse_authority(std::string_view authority, std::uint16_t default_port, ProxyRequest& out) {
  auto bad = [] { return make_error("bad host or port in the request target"); };
  std::string_view host, port;
  if (authority.starts_with("[")) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return bad();
    host = authority.substr(1, close - 1);
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad();
      port = rest.substr(1);
    }
    if (host.empty() || host.size() > 45) return bad();
    for (char c : host)
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
        return bad();
  } else {
    auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (host.empty() || host.size() > 253) return bad();
    for (char c : host)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_'))
        return bad();
  }
  if (port.empty() && default_port == 0) return bad();
  auto p = port.empty() ? std::optional<std::uint16_t>(default_port) : parse_port(port);
  if (!p) return bad();
  out.host = lower(host);
  out.port = *p;
  return ok_status();
}

// Headers a proxy must not pass on (RFC 9110 7.6.1) plus the proxy's own.
bool hop_by_hop(std::string_view name) {
  static constexpr std::string_view kNames[] = {"connection", "proxy-connection", "keep-alive", "proxy-authorization",
                                                "proxy-authenticate", "te", "trailer", "upgrade"};
  auto n = lower(name);
  return std::find(std::begin(kNames), std::end(kNames), n) != std::end(kNames);
}

}  // namespace

std::optional<std::size_t> find_head_end(std::string_view bytes) {
  auto end = bytes.find("\r\n\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  return end + 4;
}

Result<ProxyRequest> parse_proxy_request(std::string_view head) {
  if (head.size() > kMaxProxyHeadBytes) return make_error("request head too large");
  if (!head.ends_with("\r\n\r\n")) return make_error("incomplete request head");
  auto line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  auto sp1 = line.find(' ');
  auto sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return make_error("bad request line");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (method.empty() || method.size() > 32 || !std::all_of(method.begin(), method.end(), token_char))
    return make_error("bad method");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return make_error("bad HTTP version");
  if (target.empty() || target.size() > 16 * 1024) return make_error("bad request target");
  for (unsigned char c : target)
    if (c <= 0x20 || c == 0x7f) return make_error("bad request target");

  ProxyRequest req;
  std::string path;
  if (method == "CONNECT") {
    req.connect = true;
    if (auto st = parse_authority(target, 0, req); !st) return st.error();
  } else {
    if (!lower(target.substr(0, 7)).starts_with("http://"))
      return make_error("only absolute http:// targets and CONNECT are proxied");
    auto rest = target.substr(7);
    auto slash = rest.find_first_of("/?#");
    auto authority = rest.substr(0, slash);
    if (authority.find('@') != std::string_view::npos) return make_error("credentials in the request target");
    if (auto st = parse_authority(authority, 80, req); !st) return st.error();
    path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (path.front() != '/') path.insert(0, "/");
    if (auto hash = path.find('#'); hash != std::string::npos) path.resize(hash);
  }

  // Headers: kept in order minus hop-by-hop ones; framing checked.
  std::string headers;
  std::optional<std::uint64_t> content_length;
  bool chunked = false, have_host = false;
  std::string_view rest = head.substr(line_end + 2, head.size() - line_end - 4);
  while (!rest.empty()) {
    auto eol = rest.find("\r\n");
    std::string_view h = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
    auto colon = h.find(':');
    if (colon == 0 || colon == std::string_view::npos) return make_error("bad header line");
    std::string_view name = h.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), token_char)) return make_error("bad header name");
    std::string_view value = trim(h.substr(colon + 1));
    for (unsigned char c : value)
      if ((c < 0x20 && c != '\t') || c == 0x7f) return make_error("bad header value");
    if (iequals(name, "content-length")) {
      auto n = value.empty() || value.size() > 15 ? std::nullopt : std::optional<std::uint64_t>(0);
      for (char c : value) {
        if (!n || c < '0' || c > '9') { n.reset(); break; }
        *n = *n * 10 + static_cast<std::uint64_t>(c - '0');
      }
      if (!n || (content_length && *content_length != *n)) return make_error("bad Content-Length");
      content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      chunked = true;
    } else if (iequals(name, "host")) {
      have_host = true;
    }
    if (hop_by_hop(name)) continue;
    headers.append(h).append("\r\n");
  }
  if (chunked && content_length) return make_error("both Content-Length and Transfer-Encoding");
  if (req.connect) return req;

  if (!have_host) {
    std::string authority = req.host.find(':') != std::string::npos ? "[" + req.host + "]" : req.host;
    if (req.port != 80) authority += ":" + std::to_string(req.port);
    headers.insert(0, "Host: " + authority + "\r\n");
  }
  headers += "Connection: close\r\n\r\n";
  const std::string m(method), v(version);
  req.origin_head = m + " " + path + " " + v + "\r\n" + headers;
  req.absolute_head = m + " " + std::string(target) + " " + v + "\r\n" + headers;
  req.body_bytes = chunked ? std::nullopt : std::optional<std::uint64_t>(content_length.value_or(0));
  return req;
}

std::string with_proxy_authorization(std::string_view head, std::string_view username, std::string_view password) {
  auto eol = head.find("\r\n");
  std::string out(head.substr(0, eol + 2));
  out += "Proxy-Authorization: Basic " + base64_encode(std::string(username) + ":" + std::string(password)) + "\r\n";
  out.append(head.substr(eol + 2));
  return out;
}

Result<int> parse_reply_status(std::string_view head) {
  // "HTTP/1.x NNN[ reason]"
  if (head.size() < 12 || !head.starts_with("HTTP/1.") || head[8] != ' ') return make_error("not an HTTP reply");
  int code = 0;
  for (int i = 9; i < 12; ++i) {
    if (head[i] < '0' || head[i] > '9') return make_error("not an HTTP reply");
    code = code * 10 + (head[i] - '0');
  }
  if (code < 100) return make_error("not an HTTP reply");
  return code;
}

std::string proxy_error_response(std::string_view reason, int status) {
  std::string escaped;
  for (char c : reason) {
    switch (c) {
      case '<': escaped += "&lt;"; break;
      case '>': escaped += "&gt;"; break;
      case '&': escaped += "&amp;"; break;
      case '"': escaped += "&quot;"; break;
      default: escaped += (static_cast<unsigned char>(c) < 0x20 ? '?' : c);
    }
  }
  std::string body = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Proxy error</title></head><body>"
                     "<h1>Kindling proxy error</h1><p id=\"kindling-proxy-error\">" +
                     escaped + "</p></body></html>\n";
  return "HTTP/1.1 " + std::to_string(status) + (status == 502 ? " Bad Gateway" : " Forbidden") +
         "\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\nConnection: close\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

bool is_local_host_name(std::string_view host) {
  std::string h = lower(host);
  if (h.ends_with(".")) h.pop_back();
  if (h == "localhost" || h.ends_with(".localhost")) return true;
  if (h.starts_with("127.") || h == "0.0.0.0" || h.starts_with("0.")) return true;
  // IPv6 loopback, unspecified and v4-mapped loopback; the machine has no
  // other IPv6 to reach.
  return h == "::1" || h == "::" || h.starts_with("::ffff:127.") || h.starts_with("::ffff:0.") ||
         h == "0:0:0:0:0:0:0:1";
}

std::string base64_encode(std::string_view in) {
  static constexpr char kTable[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += kTable[(v >> 6) & 63];
    out += kTable[v & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += kTable[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

}  // namespace kindling::agent
