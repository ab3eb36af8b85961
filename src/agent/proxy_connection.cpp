#include "agent/proxy_connection.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <vector>

#include "agent/forward_proxy.hpp"
#include "agent/proxy_request.hpp"
#include "agent/socks5.hpp"

namespace kindling::agent {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Chromium keeps idle proxy connections around; one that sends nothing for
// this long is closed (Chromium opens another when it needs one).
constexpr auto kHeadTimeout = std::chrono::seconds(60);
constexpr auto kConnectTimeout = std::chrono::seconds(10);
constexpr auto kHandshakeTimeout = std::chrono::seconds(15);

// A failure to tell Chromium about; `upstream` ones also become events.
struct Failure {
  std::string reason;
  bool upstream = false;
  int status = 502;
};

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

bool wait_fd(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  for (;;) {
    int n = ::poll(&p, 1, ms_left(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

bool send_all(int fd, std::string_view bytes, Clock::time_point deadline) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(fd, POLLOUT, deadline)) continue;
    return false;
  }
  return true;
}

// Reads exactly `count` bytes (handshake replies), or fails.
std::optional<std::string> recv_exact(int fd, std::size_t count, Clock::time_point deadline) {
  std::string out(count, '\0');
  std::size_t got = 0;
  while (got < count) {
    if (!wait_fd(fd, POLLIN, deadline)) return std::nullopt;
    ssize_t n = ::recv(fd, out.data() + got, count - got, MSG_DONTWAIT);
    if (n > 0) got += static_cast<std::size_t>(n);
    else if (n == 0 || (errno != EINTR && errno != EAGAIN)) return std::nullopt;
  }
  return out;
}

// Reads until a complete head (bounded); returns head + whatever followed.
std::optional<std::string> recv_head(int fd, Clock::time_point deadline, std::size_t& head_end) {
  std::string buf;
  char chunk[4096];
  while (buf.size() < kMaxProxyHeadBytes) {
    if (!wait_fd(fd, POLLIN, deadline)) return std::nullopt;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n == 0) return std::nullopt;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return std::nullopt;
    }
    auto from = buf.size() < 3 ? 0 : buf.size() - 3;
    buf.append(chunk, static_cast<std::size_t>(n));
    if (auto end = find_head_end(std::string_view(buf).substr(from))) {
      head_end = from + *end;
      return buf;
    }
  }
  head_end = 0;
  return buf;  // too large: head_end 0 says so
}

bool is_local_address(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    auto a = ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
    return (a >> 24) == 127 || (a >> 24) == 0;
  }
  if (sa->sa_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a) || IN6_IS_ADDR_UNSPECIFIED(&a)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a)) return a.s6_addr[12] == 127 || a.s6_addr[12] == 0;
  }
  return false;
}

// Resolves and connects with a deadline; never to an address of the machine
// itself (a DNS name may point at 127.0.0.1, where Chromium's debugging
// port listens).
Result<UniqueFd> open_tcp(const std::string& host, std::uint16_t port, Clock::time_point deadline) {
  if (is_local_host_name(host)) return make_error("refused: " + host + " is this machine itself");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
  if (rc != 0) return make_error("cannot resolve " + host + " (" + ::gai_strerror(rc) + ")");
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(list, ::freeaddrinfo);
  std::string last = "no address";
  for (auto* ai = list; ai; ai = ai->ai_next) {
    if (is_local_address(ai->ai_addr)) {
      last = "refused: " + host + " resolves to this machine itself";
      continue;
    }
    UniqueFd fd(::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
      last = std::strerror(errno);
      continue;
    }
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = std::strerror(errno);
      continue;
    }
    if (!wait_fd(fd.get(), POLLOUT, deadline)) {
      last = "timed out";
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      last = std::strerror(err);
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
  }
  return make_error("cannot connect to " + host + ":" + std::to_string(port) + " (" + last + ")");
}

// Opens a tunnel to host:port through a SOCKS5 upstream.
Status socks5_handshake(int fd, const UpstreamProxy& up, const ProxyRequest& req, Clock::time_point deadline) {
  namespace s5 = socks5;
  const bool auth = !up.username.empty();
  if (!send_all(fd, s5::greeting(auth), deadline)) return make_error("the SOCKS5 proxy closed the connection");
  auto choice = recv_exact(fd, 2, deadline);
  if (!choice) return make_error("the SOCKS5 proxy did not answer the greeting");
  if (auto m = s5::parse_method_choice(*choice, auth); !m) return m.error();
  if (auth) {
    if (!send_all(fd, s5::auth_request(up.username, up.password), deadline))
      return make_error("the SOCKS5 proxy closed the connection");
    auto reply = recv_exact(fd, 2, deadline);
    // Servers usually close at once on bad credentials instead of replying.
    if (!reply) return make_error("the SOCKS5 proxy refused the username/password (closed the connection)");
    if (auto st = s5::parse_auth_reply(*reply); !st) return st.error();
  }
  if (!send_all(fd, s5::connect_request(req.host, req.port), deadline))
    return make_error("the SOCKS5 proxy closed the connection");
  auto prefix = recv_exact(fd, 5, deadline);
  if (!prefix) return make_error("the SOCKS5 proxy did not answer the CONNECT request");
  auto length = s5::reply_length(*prefix);
  if (!length) return length.error();
  auto rest = recv_exact(fd, *length - 5, deadline);
  if (!rest) return make_error("the SOCKS5 proxy sent a truncated reply");
  return s5::parse_connect_reply(*prefix + *rest);
}

std::string connect_target(const ProxyRequest& req) {
  return (req.host.find(':') != std::string::npos ? "[" + req.host + "]" : req.host) + ":" + std::to_string(req.port);
}

// Opens a tunnel to host:port through an HTTP upstream (CONNECT). `leftover`
// gets bytes the upstream sent after its reply head.
Status http_connect_handshake(int fd, const UpstreamProxy& up, const ProxyRequest& req, Clock::time_point deadline,
                              std::string& leftover) {
  std::string target = connect_target(req);
  std::string head = "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n";
  if (!up.username.empty()) head = with_proxy_authorization(head, up.username, up.password);
  if (!send_all(fd, head, deadline)) return make_error("the HTTP proxy closed the connection");
  std::size_t end = 0;
  auto reply = recv_head(fd, deadline, end);
  if (!reply || end == 0) return make_error("the HTTP proxy did not answer CONNECT");
  auto status = parse_reply_status(*reply);
  if (!status) return make_error("the HTTP proxy sent something that is not an HTTP reply");
  if (*status == 407)
    return make_error(up.username.empty() ? "the HTTP proxy requires authentication (407) and no credentials are set"
                                          : "the HTTP proxy refused the credentials (407)");
  if (*status / 100 != 2) return make_error("the HTTP proxy answered " + std::to_string(*status) + " to CONNECT");
  leftover = reply->substr(end);
  return ok_status();
}

// Relays both ways through bounded buffers until both directions end or one
// breaks. `client_budget`: how many more bytes from Chromium belong to this
// request (plain HTTP); past it nothing is forwarded.
void relay(int client, int server, std::optional<std::uint64_t> client_budget) {
  struct Dir {
    int from, to;
    std::vector<char> buf = std::vector<char>(kProxyBufferBytes);
    std::size_t len = 0, off = 0;
    bool eof = false, shut = false;
  } up{client, server}, down{server, client};
  for (;;) {
    pollfd p[2] = {{client, 0, 0}, {server, 0, 0}};
    auto want = [&](Dir& d, bool can_read) {
      short& from_ev = d.from == client ? p[0].events : p[1].events;
      short& to_ev = d.to == client ? p[0].events : p[1].events;
      if (!d.eof && d.len == 0 && can_read) from_ev |= POLLIN;
      if (d.len > d.off) to_ev |= POLLOUT;
    };
    bool up_open = !client_budget || *client_budget > 0;
    want(up, up_open);
    want(down, true);
    if ((up.eof || !up_open) && up.len == 0 && down.eof && down.len == 0) return;
    // Chromium's side is always watched, so a request it abandons (it
    // closes while the server is still silent) ends this thread; the
    // server's only when there is something to do with it (POLLHUP is
    // reported regardless of events and would spin the loop).
    if (!up.eof) p[0].events |= POLLRDHUP;
    if (p[1].events == 0) p[1].fd = -1;
    int n = ::poll(p, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL)) return;
    if ((p[0].revents & POLLRDHUP) && !up_open) return;  // done sending and gone: abandoned
    for (Dir* d : {&up, &down}) {
      pollfd& from = d->from == client ? p[0] : p[1];
      pollfd& to = d->to == client ? p[0] : p[1];
      if ((to.revents & (POLLERR | POLLNVAL)) || ((to.revents & POLLHUP) && d->len > d->off)) return;
      if ((from.revents & (POLLIN | POLLHUP | POLLERR)) && !d->eof && d->len == 0) {
        std::size_t cap = d->buf.size();
        if (d == &up && client_budget) cap = std::min<std::uint64_t>(cap, *client_budget);
        ssize_t r = ::recv(d->from, d->buf.data(), cap, MSG_DONTWAIT);
        if (r > 0) {
          d->len = static_cast<std::size_t>(r);
          d->off = 0;
          if (d == &up && client_budget) *client_budget -= static_cast<std::uint64_t>(r);
        } else if (r == 0) {
          d->eof = true;
        } else if (errno != EAGAIN && errno != EINTR) {
          return;  // reset: end both
        }
      }
      if (d->len > d->off) {
        ssize_t w = ::send(d->to, d->buf.data() + d->off, d->len - d->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) d->off += static_cast<std::size_t>(w);
        else if (w < 0 && errno != EAGAIN && errno != EINTR) return;
        if (d->off == d->len) d->len = d->off = 0;
      }
      if (d->eof && d->len == 0 && !d->shut) {
        ::shutdown(d->to, SHUT_WR);  // half-close travels on
        d->shut = true;
      }
    }
    if (down.eof && down.len == 0) return;  // the server is done: so is this request
  }
}

std::string describe(const UpstreamProxy& up) { return "upstream proxy " + up.server(); }

}  // namespace

void serve_proxy_connection(UniqueFd client,
                            const std::function<std::shared_ptr<const UpstreamProxy>()>& current_upstream,
                            const std::function<void(const std::string&)>& on_failure) {
  std::size_t head_end = 0;
  auto bytes = recv_head(client.get(), Clock::now() + kHeadTimeout, head_end);
  if (!bytes) return;  // idle or gone: nothing to answer
  auto reply_error = [&](const Failure& f) {
    send_all(client.get(), proxy_error_response(f.reason, f.status), Clock::now() + std::chrono::seconds(5));
  };
  if (head_end == 0) return reply_error({"request head larger than 64 KiB", false, 400});
  auto req = parse_proxy_request(std::string_view(*bytes).substr(0, head_end));
  if (!req) return reply_error({"bad proxy request: " + req.error().message, false, 400});
  std::string early = bytes->substr(head_end);  // bytes Chromium sent after the head

  const std::shared_ptr<const UpstreamProxy> upstream = current_upstream();
  const bool via_upstream = upstream && !proxy_bypassed(*upstream, req->host);
  const auto deadline = Clock::now() + kConnectTimeout;
  std::string leftover;  // bytes from the server side already read
  UniqueFd server;
  if (!via_upstream) {
    auto fd = open_tcp(req->host, req->port, deadline);
    if (!fd) return reply_error({fd.error().message, false, is_local_host_name(req->host) ? 403 : 502});
    server = std::move(*fd);
  } else {
    auto fail = [&](const std::string& why) {
      std::string reason = describe(*upstream) + " failed for " + connect_target(*req) + ": " + why;
      on_failure(reason);
      reply_error({reason, true});
    };
    auto fd = open_tcp(upstream->host, upstream->port, deadline);
    if (!fd) return fail(fd.error().message);
    server = std::move(*fd);
    const auto hs_deadline = Clock::now() + kHandshakeTimeout;
    if (upstream->scheme == UpstreamProxy::Scheme::kSocks5) {
      if (auto st = socks5_handshake(server.get(), *upstream, *req, hs_deadline); !st) return fail(st.error().message);
    } else if (req->connect) {
      if (auto st = http_connect_handshake(server.get(), *upstream, *req, hs_deadline, leftover); !st)
        return fail(st.error().message);
    } else {
      // Plain HTTP through an HTTP upstream: the request in absolute form,
      // and a look at the reply so a 407 becomes our error page instead of
      // an authentication prompt.
      std::string head = req->absolute_head;
      if (!upstream->username.empty()) head = with_proxy_authorization(head, upstream->username, upstream->password);
      std::uint64_t body = req->body_bytes.value_or(0);
      std::string first_body = early.substr(0, req->body_bytes ? std::min<std::uint64_t>(body, early.size()) : early.size());
      if (!send_all(server.get(), head + first_body, hs_deadline)) return fail("the HTTP proxy closed the connection");
      if (req->body_bytes) req->body_bytes = body - first_body.size();
      early.clear();
      if (!req->body_bytes || *req->body_bytes == 0) {
        std::size_t end = 0;
        auto reply = recv_head(server.get(), hs_deadline + std::chrono::seconds(45), end);
        if (!reply) return fail("the HTTP proxy closed the connection without a reply");
        if (end > 0) {
          auto status = parse_reply_status(*reply);
          if (status && *status == 407)
            return fail(upstream->username.empty() ? "the HTTP proxy requires authentication (407)"
                                                   : "the HTTP proxy refused the credentials (407)");
        }
        leftover = std::move(*reply);
      }
    }
  }

  const auto send_deadline = Clock::now() + kHandshakeTimeout;
  if (req->connect) {
    if (!send_all(client.get(), "HTTP/1.1 200 Connection established\r\n\r\n", send_deadline)) return;
  } else if (!via_upstream || upstream->scheme == UpstreamProxy::Scheme::kSocks5) {
    std::uint64_t body = req->body_bytes.value_or(0);
    std::string first_body = early.substr(0, req->body_bytes ? std::min<std::uint64_t>(body, early.size()) : early.size());
    if (!send_all(server.get(), req->origin_head + first_body, send_deadline)) return;
    if (req->body_bytes) req->body_bytes = body - first_body.size();
    early.clear();
  }
  if (!early.empty() && !send_all(server.get(), early, send_deadline)) return;
  if (!leftover.empty() && !send_all(client.get(), leftover, send_deadline)) return;
  relay(client.get(), server.get(), req->connect ? std::nullopt : req->body_bytes);
}

}  // namespace kindling::agent
