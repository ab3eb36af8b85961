#include "agent/forward_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "agent/agent_log.hpp"
#include "agent/proxy_connection.hpp"

namespace kindling::agent {

struct ForwardProxy::Shared {
  UniqueFd listener;
  FailureSink sink;
  std::mutex mutex;
  std::shared_ptr<const UpstreamProxy> upstream;  // null: direct
  std::atomic<int> active{0};
  std::atomic<bool> stopping{false};
};

namespace {

void accept_loop(std::shared_ptr<ForwardProxy::Shared> shared) {
  while (!shared->stopping.load()) {
    pollfd p{shared->listener.get(), POLLIN, 0};
    if (::poll(&p, 1, 500) <= 0) continue;  // wakes now and then to see `stopping`
    UniqueFd client(::accept4(shared->listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!client.valid()) continue;
    if (shared->active.load() >= kMaxProxyConnections) {
      log_warn("forward proxy: " + std::to_string(kMaxProxyConnections) + " connections open, refusing one");
      continue;  // closed: Chromium reports a proxy connection failure
    }
    ++shared->active;
    try {
      std::thread([shared, fd = client.release()]() mutable {
        auto current = [&shared] {
          std::lock_guard lock(shared->mutex);
          return shared->upstream;
        };
        serve_proxy_connection(UniqueFd(fd), current, shared->sink);
        --shared->active;
      }).detach();
    } catch (const std::exception& e) {  // no thread to be had: refuse, stay up
      --shared->active;
      log_warn(std::string("forward proxy: cannot start a thread: ") + e.what());
    }
  }
}

}  // namespace

Result<std::unique_ptr<ForwardProxy>> ForwardProxy::start(FailureSink sink) {
  auto shared = std::make_shared<Shared>();
  shared->sink = std::move(sink);
  shared->listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!shared->listener.valid()) return make_error(std::string("forward proxy socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(shared->listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(shared->listener.get(), 128) != 0)
    return make_error(std::string("forward proxy bind 127.0.0.1: ") + std::strerror(errno));
  socklen_t len = sizeof addr;
  ::getsockname(shared->listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  std::unique_ptr<ForwardProxy> proxy(new ForwardProxy());
  proxy->shared_ = shared;
  proxy->port_ = ntohs(addr.sin_port);
  std::thread(accept_loop, shared).detach();
  return proxy;
}

ForwardProxy::~ForwardProxy() { shared_->stopping = true; }

void ForwardProxy::set_upstream(std::optional<UpstreamProxy> upstream) {
  auto next = upstream ? std::make_shared<const UpstreamProxy>(std::move(*upstream)) : nullptr;
  std::lock_guard lock(shared_->mutex);
  shared_->upstream = std::move(next);
}

}  // namespace kindling::agent
