#include "vmm/api/http_request_parser.hpp"

#include <fmt/format.h>

#include <cctype>

namespace kindling::vmm {
namespace {

HttpParseResult error(int status, std::string message) {
  HttpParseResult r;
  r.state = HttpParseResult::State::kError;
  r.error_status = status;
  r.error = std::move(message);
  return r;
}

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace

HttpParseResult parse_http_request(std::string_view buffer) {
  size_t head_end = buffer.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (buffer.size() > kMaxHttpHeaderBytes) return error(431, "request headers are too large");
    return {};
  }
  if (head_end + 4 > kMaxHttpHeaderBytes) return error(431, "request headers are too large");
  std::string_view head = buffer.substr(0, head_end);

  size_t line_end = head.find("\r\n");
  std::string_view request_line = head.substr(0, line_end);
  std::string_view rest = line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);

  HttpParseResult r;
  HttpRequest& req = r.request;
  size_t sp1 = request_line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos) {
    return error(400, "malformed request line");
  }
  std::string_view method = request_line.substr(0, sp1);
  std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = request_line.substr(sp2 + 1);
  if (method.empty() || method.size() > 16) return error(400, "malformed request method");
  for (char c : method) {
    if (!is_token_char(c)) return error(400, "malformed request method");
  }
  if (target.empty() || target.front() != '/' || target.size() > 1024) return error(400, "malformed request target");
  for (char c : target) {
    if (c <= 0x20 || c == 0x7f) return error(400, "malformed request target");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return error(505, "only HTTP/1.0 and HTTP/1.1 are supported");
  req.method = std::string(method);
  req.path = std::string(target.substr(0, target.find('?')));
  req.version = std::string(version);
  req.keep_alive = version == "HTTP/1.1";

  size_t content_length = 0;
  bool have_length = false;
  while (!rest.empty()) {
    size_t eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
    if (line.empty()) return error(400, "malformed header");
    if (line.front() == ' ' || line.front() == '\t') return error(400, "folded headers are not supported");
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return error(400, "malformed header");
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!is_token_char(c)) return error(400, "malformed header name");
    }
    std::string_view value = trim(line.substr(colon + 1));
    for (char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) return error(400, "malformed header value");
    }
    if (req.headers.size() >= kMaxHttpHeaders) return error(431, "too many request headers");
    std::string lname = lower(name);
    if (lname == "content-length") {
      if (have_length) return error(400, "duplicate Content-Length header");
      if (value.empty() || value.size() > 9) return error(400, "invalid Content-Length");
      size_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return error(400, "invalid Content-Length");
        n = n * 10 + static_cast<size_t>(c - '0');
      }
      if (n > kMaxHttpBodyBytes) return error(413, fmt::format("request body is larger than {} bytes", kMaxHttpBodyBytes));
      content_length = n;
      have_length = true;
    } else if (lname == "transfer-encoding") {
      return error(501, "Transfer-Encoding is not supported; send Content-Length");
    } else if (lname == "connection") {
      std::string v = lower(value);
      if (v == "close") req.keep_alive = false;
      if (v == "keep-alive") req.keep_alive = true;
    }
    req.headers.emplace_back(std::move(lname), std::string(value));
  }

  size_t body_start = head_end + 4;
  if (buffer.size() - body_start < content_length) return {};  // body still arriving
  req.body = std::string(buffer.substr(body_start, content_length));
  r.state = HttpParseResult::State::kComplete;
  r.consumed = body_start + content_length;
  return r;
}

std::string format_http_response(int status, std::string_view body, bool keep_alive) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nServer: kindling-vmm\r\nConnection: {}\r\n", status, reason(status),
                                keep_alive ? "keep-alive" : "close");
  if (status == 204) {
    out += "\r\n";
    return out;
  }
  out += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.size());
  out += body;
  return out;
}

}  // namespace kindling::vmm
