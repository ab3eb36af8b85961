#include "agent/cdp_version_probe.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace kindling::agent {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return out;
}

Result<std::string> string_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return make_error(std::string("/json/version lacks '") + key + "'");
  std::string value = it->get<std::string>();
  if (value.size() > 1024) return make_error(std::string("/json/version '") + key + "' is too long");
  return value;
}

}  // namespace

std::optional<Result<agent_protocol::BrowserInfo>> parse_json_version_response(std::string_view raw, bool at_eof) {
  using R = Result<agent_protocol::BrowserInfo>;
  if (raw.size() > kMaxVersionResponseBytes) return R(make_error("/json/version response is too large"));
  auto header_end = raw.find("\r\n\r\n");
  if (header_end == std::string_view::npos)
    return at_eof ? std::optional<R>(make_error("/json/version: connection closed mid-headers")) : std::nullopt;
  std::string_view headers = raw.substr(0, header_end);
  std::string_view body = raw.substr(header_end + 4);
  if (!headers.starts_with("HTTP/1.1 200") && !headers.starts_with("HTTP/1.0 200"))
    return R(make_error("/json/version answered '" + std::string(headers.substr(0, headers.find('\r'))).substr(0, 64) +
                        "'"));
  std::optional<std::size_t> content_length;
  for (std::size_t pos = headers.find("\r\n"); pos != std::string_view::npos;) {
    std::size_t next = headers.find("\r\n", pos + 2);
    std::string_view line = headers.substr(pos + 2, next == std::string_view::npos ? std::string_view::npos
                                                                                  : next - pos - 2);
    if (lower(line.substr(0, 15)) == "content-length:") {
      std::string_view value = line.substr(15);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      std::size_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size()) return R(make_error("bad Content-Length"));
      content_length = n;
    }
    pos = next;
  }
  if (content_length) {
    if (body.size() < *content_length)
      return at_eof ? std::optional<R>(make_error("/json/version: body cut short")) : std::nullopt;
    body = body.substr(0, *content_length);
  } else if (!at_eof) {
    return std::nullopt;  // body ends at close
  }
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return R(make_error("/json/version body is not a JSON object"));
  auto browser = string_field(json, "Browser");
  if (!browser) return R(browser.error());
  auto protocol = string_field(json, "Protocol-Version");
  if (!protocol) return R(protocol.error());
  auto user_agent = string_field(json, "User-Agent");
  if (!user_agent) return R(user_agent.error());
  auto ws_url = string_field(json, "webSocketDebuggerUrl");
  if (!ws_url) return R(ws_url.error());
  // "ws://127.0.0.1:PORT/devtools/browser/<id>": only the path matters, the
  // host reaches Chromium through the agent, never by its address.
  std::string_view url = *ws_url;
  auto scheme = url.find("://");
  auto path_start = scheme == std::string_view::npos ? std::string_view::npos : url.find('/', scheme + 3);
  if (path_start == std::string_view::npos) return R(make_error("/json/version webSocketDebuggerUrl has no path"));
  std::string path(url.substr(path_start));
  if (!path.starts_with("/devtools/browser/") || path.find_first_of("?# \r\n") != std::string::npos)
    return R(make_error("/json/version webSocketDebuggerUrl is not a browser target"));
  return R(agent_protocol::BrowserInfo{*browser, *protocol, *user_agent, path});
}

Result<CdpVersionProbe> CdpVersionProbe::start(std::uint16_t port) {
  CdpVersionProbe probe;
  probe.socket_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!probe.socket_.valid()) return make_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(probe.socket_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 && errno != EINPROGRESS)
    return make_error(std::string("connect to Chromium's debugging port: ") + std::strerror(errno));
  return probe;
}

std::uint32_t CdpVersionProbe::wanted_events() const { return request_sent_ ? EPOLLIN : EPOLLOUT; }

std::optional<Result<agent_protocol::BrowserInfo>> CdpVersionProbe::on_ready() {
  using R = Result<agent_protocol::BrowserInfo>;
  if (!request_sent_) {
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(socket_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return R(make_error(std::string("connect to Chromium's debugging port: ") + std::strerror(err)));
    static constexpr std::string_view kRequest =
        "GET /json/version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    ssize_t n = ::send(socket_.get(), kRequest.data(), kRequest.size(), MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(kRequest.size()))
      return R(make_error(std::string("send /json/version: ") + (n < 0 ? std::strerror(errno) : "short write")));
    request_sent_ = true;
    return std::nullopt;
  }
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(socket_.get(), buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return parse_json_version_response(response_, false);
      return R(make_error(std::string("read /json/version: ") + std::strerror(errno)));
    }
    if (n == 0) return parse_json_version_response(response_, true);
    response_.append(buf, static_cast<std::size_t>(n));
    if (response_.size() > kMaxVersionResponseBytes) return R(make_error("/json/version response is too large"));
  }
}

}  // namespace kindling::agent
