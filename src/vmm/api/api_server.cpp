#include "vmm/api/api_server.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmm/logger.hpp"

namespace kindling::vmm {
namespace {

constexpr size_t kMaxClients = 16;
constexpr size_t kMaxBuffered = kMaxHttpHeaderBytes + kMaxHttpBodyBytes;

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Replies are small; a client that will not read for long is dropped.
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 1000) <= 0) return false;
      continue;
    }
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

Result<ApiServer> ApiServer::bind(const std::string& socket_path, Handler handler) {
  sockaddr_un addr{};
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) return make_error("API socket path is empty or too long");
  ApiServer s;
  s.handler_ = std::move(handler);
  s.listen_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s.listen_.valid()) return make_error(fmt::format("cannot create the API socket: {}", std::strerror(errno)));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
  if (::bind(s.listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return make_error(fmt::format("Failed to open the API socket at {}: {}", socket_path, std::strerror(errno)));
  }
  s.path_ = socket_path;
  if (::listen(s.listen_.get(), 16) != 0) return make_error(fmt::format("listen on the API socket: {}", std::strerror(errno)));
  return s;
}

ApiServer::~ApiServer() {
  if (!path_.empty() && listen_.valid()) ::unlink(path_.c_str());
}

std::vector<int> ApiServer::client_fds() const {
  std::vector<int> out;
  for (const auto& [fd, c] : clients_) out.push_back(fd);
  return out;
}

void ApiServer::accept_clients() {
  for (;;) {
    int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    if (clients_.size() >= kMaxClients) {
      ::close(fd);
      log_warn("API: too many connections, refusing one");
      continue;
    }
    clients_[fd] = {UniqueFd(fd), std::string()};
  }
}

void ApiServer::service(int client_fd) {
  auto it = clients_.find(client_fd);
  if (it == clients_.end()) return;
  std::string& buf = it->second.second;
  char chunk[4096];
  bool close_now = false;
  for (;;) {
    ssize_t n = ::recv(client_fd, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buf.append(chunk, static_cast<size_t>(n));
      if (buf.size() > kMaxBuffered) break;  // the parser will reject it below
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    close_now = true;  // EOF or error
    break;
  }
  while (!buf.empty()) {
    HttpParseResult r = parse_http_request(buf);
    if (r.state == HttpParseResult::State::kIncomplete) {
      if (buf.size() > kMaxBuffered) {
        write_all(client_fd, format_http_response(413, fault_body("request is too large"), false));
        close_now = true;
      }
      break;
    }
    if (r.state == HttpParseResult::State::kError) {
      write_all(client_fd, format_http_response(r.error_status, fault_body(r.error), false));
      close_now = true;
      break;
    }
    buf.erase(0, r.consumed);
    ApiResponse resp = handler_(r.request);
    if (!write_all(client_fd, format_http_response(resp.status, resp.body, r.request.keep_alive)) || !r.request.keep_alive) {
      close_now = true;
      break;
    }
  }
  if (close_now) clients_.erase(it);
}

}  // namespace kindling::vmm
