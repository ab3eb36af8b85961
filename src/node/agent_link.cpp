#include "node/agent_link.hpp"

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "common/log.hpp"

namespace kindling::node {

namespace asio = boost::asio;
namespace ap = agent_protocol;

namespace {
constexpr auto kConnectRetryInterval = std::chrono::milliseconds(3);
constexpr auto kCdpReplyTimeout = std::chrono::seconds(5);
}  // namespace

AgentControl::AgentControl(asio::io_context& io, std::shared_ptr<Machine> machine, Events events)
    : io_(io), machine_(machine), events_(std::move(events)), socket_(io), retry_timer_(io) {}

std::shared_ptr<AgentControl> AgentControl::open(asio::io_context& io, std::shared_ptr<Machine> machine,
                                                 Events events, std::chrono::milliseconds connect_deadline) {
  std::shared_ptr<AgentControl> link(new AgentControl(io, machine, std::move(events)));
  link->deadline_ = std::chrono::steady_clock::now() + connect_deadline;
  link->try_connect();
  return link;
}

void AgentControl::try_connect() {
  if (closed_) return;
  auto machine = machine_.lock();
  if (!machine) return fail("machine is gone");
  auto fd = machine->connect_agent();
  if (!fd) {
    last_connect_error_ = fd.error().message;
    if (std::chrono::steady_clock::now() >= deadline_) {
      fail("agent did not accept a connection in time: " + last_connect_error_);
      return;
    }
    retry_timer_.expires_after(kConnectRetryInterval);
    retry_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->try_connect();
    });
    return;
  }
  boost::system::error_code ec;
  socket_.assign(asio::local::stream_protocol(), fd->release(), ec);
  if (ec) {
    fail("cannot adopt agent socket: " + ec.message());
    return;
  }
  outbox_.emplace_back(ap::kControlPreamble);
  write_next();
  start_reading();
}

void AgentControl::start_reading() {
  if (closed_) return;
  socket_.async_read_some(asio::buffer(read_buffer_), [self = shared_from_this()](boost::system::error_code ec,
                                                                                 std::size_t n) {
    if (self->closed_) return;
    if (ec) return self->fail(ec == asio::error::eof ? "agent closed its control channel"
                                                     : "agent control channel error: " + ec.message());
    if (auto st = self->decoder_.feed(std::string_view(self->read_buffer_.data(), n)); !st)
      return self->fail("agent protocol violation: " + st.error().message);
    while (auto frame = self->decoder_.next()) {
      if (!*frame) return self->fail("agent protocol violation: " + frame->error().message);
      auto msg = ap::parse_agent_message(frame->value());
      if (!msg) return self->fail("agent protocol violation: " + msg.error().message);
      if (auto* hello = std::get_if<ap::Hello>(&msg.value())) {
        if (hello->protocol != ap::kVersion)
          return self->fail("agent speaks protocol " + std::to_string(hello->protocol) + ", host speaks " +
                            std::to_string(ap::kVersion));
        self->hello_seen_ = true;
        continue;
      }
      if (!self->hello_seen_) return self->fail("agent protocol violation: first message was not hello");
      if (auto* ready = std::get_if<ap::Ready>(&msg.value())) {
        if (self->events_.on_ready) self->events_.on_ready(*ready);
      } else if (auto* exited = std::get_if<ap::BrowserExited>(&msg.value())) {
        if (self->events_.on_browser_exited) self->events_.on_browser_exited(*exited);
      } else if (auto* applied = std::get_if<ap::IdentityApplied>(&msg.value())) {
        self->on_identity_applied(*applied);
      } else if (auto* set = std::get_if<ap::ProxySet>(&msg.value())) {
        self->finish_request(set->id, set->ok ? ok_status() : Status(make_error(set->error, "unavailable")));
      } else if (auto* failed = std::get_if<ap::ProxyFailed>(&msg.value())) {
        if (self->events_.on_proxy_failed) self->events_.on_proxy_failed(failed->message);
      } else if (auto* err = std::get_if<ap::AgentError>(&msg.value())) {
        return self->fail("agent reported: " + err->message);
      }
      if (self->closed_) return;  // a callback closed the link
    }
    self->start_reading();
  });
}

void AgentControl::send(const ap::HostMessage& message) {
  if (closed_ || !socket_.is_open()) return;
  outbox_.push_back(ap::encode_frame(ap::to_json(message)));
  if (!writing_) write_next();
}

std::uint64_t AgentControl::start_request(std::chrono::milliseconds timeout, std::string timeout_message,
                                          std::function<void(Status)> done) {
  std::uint64_t id = next_request_id_++;
  PendingRequest& request = pending_[id];
  request.done = std::move(done);
  request.timer = std::make_unique<asio::steady_timer>(io_);
  request.timer->expires_after(timeout);
  request.timer->async_wait(
      [self = shared_from_this(), id, message = std::move(timeout_message)](boost::system::error_code ec) {
        if (ec || self->closed_) return;
        auto it = self->pending_.find(id);
        if (it == self->pending_.end()) return;
        auto cb = std::move(it->second.done);
        self->pending_.erase(it);
        cb(make_error(message, "unavailable"));
      });
  return id;
}

void AgentControl::finish_request(std::uint64_t id, Status result) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;  // late, after its timeout
  auto cb = std::move(it->second.done);
  it->second.timer->cancel();
  pending_.erase(it);
  cb(std::move(result));
}

void AgentControl::apply_identity(const BrowserIdentity& identity, std::chrono::milliseconds timeout,
                                  std::function<void(Status)> done) {
  if (closed_) return;
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout).count();
  auto id = start_request(timeout, "the agent did not apply the identity within " + std::to_string(seconds) + " s",
                          std::move(done));
  send(ap::ApplyIdentity{id, identity});
}

void AgentControl::set_proxy(const UpstreamProxy& proxy, std::chrono::milliseconds timeout,
                             std::function<void(Status)> done) {
  if (closed_) return;
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout).count();
  auto id = start_request(timeout, "the agent did not set the proxy within " + std::to_string(seconds) + " s",
                          std::move(done));
  send(ap::SetProxy{id, proxy});
}

void AgentControl::on_identity_applied(const ap::IdentityApplied& answer) {
  if (answer.ok) return finish_request(answer.id, ok_status());
  // "Chromium refused ..." is a value the request carried (a time zone
  // Chromium does not know); anything else is the machine's fault.
  bool refused = answer.error.rfind("Chromium refused", 0) == 0;
  finish_request(answer.id, make_error(answer.error, refused ? "bad_request" : "unavailable"));
}

void AgentControl::write_next() {
  if (closed_ || outbox_.empty()) {
    writing_ = false;
    return;
  }
  writing_ = true;
  asio::async_write(socket_, asio::buffer(outbox_.front()),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->outbox_.pop_front();
                      if (ec) {  // the read side reports the failure
                        self->writing_ = false;
                        return;
                      }
                      self->write_next();
                    });
}

void AgentControl::close() {
  if (closed_) return;
  closed_ = true;
  retry_timer_.cancel();
  for (auto& [id, request] : pending_) request.timer->cancel();
  pending_.clear();
  boost::system::error_code ignored;
  socket_.shutdown(AgentSocket::shutdown_both, ignored);
  socket_.close(ignored);
}

void AgentControl::fail(const std::string& why) {
  if (closed_) return;
  auto on_failure = std::move(events_.on_failure);
  close();
  if (on_failure) on_failure(why);
}

namespace {

struct CdpOpen : std::enable_shared_from_this<CdpOpen> {
  explicit CdpOpen(asio::io_context& io) : socket(std::make_unique<AgentSocket>(io)), timer(io) {}
  std::unique_ptr<AgentSocket> socket;
  asio::steady_timer timer;
  asio::streambuf reply{ap::kMaxReplyLineBytes};
  std::function<void(Result<std::unique_ptr<AgentSocket>>)> done;
  bool finished = false;

  void finish(Result<std::unique_ptr<AgentSocket>> r) {
    if (finished) return;
    finished = true;
    timer.cancel();
    auto cb = std::move(done);
    cb(std::move(r));
  }
};

}  // namespace

void open_cdp_stream(asio::io_context& io, Machine& machine,
                     std::function<void(Result<std::unique_ptr<AgentSocket>>)> done) {
  auto op = std::make_shared<CdpOpen>(io);
  op->done = std::move(done);
  auto fd = machine.connect_agent();
  if (!fd) return op->finish(make_error("cannot reach the session's agent: " + fd.error().message, "unavailable"));
  boost::system::error_code ec;
  op->socket->assign(asio::local::stream_protocol(), fd->release(), ec);
  if (ec) return op->finish(make_error("cannot adopt agent socket: " + ec.message()));
  op->timer.expires_after(kCdpReplyTimeout);
  op->timer.async_wait([op](boost::system::error_code ec) {
    if (ec) return;
    boost::system::error_code ignored;
    op->socket->close(ignored);
    op->finish(make_error("agent did not answer a CDP stream request in time", "unavailable"));
  });
  static const std::string kPreamble(ap::kCdpPreamble);
  asio::async_write(*op->socket, asio::buffer(kPreamble), [op](boost::system::error_code ec, std::size_t) {
    if (ec) return op->finish(make_error("cannot write to agent: " + ec.message(), "unavailable"));
    asio::async_read_until(*op->socket, op->reply, '\n', [op](boost::system::error_code ec, std::size_t n) {
      if (ec) return op->finish(make_error("agent refused the CDP stream: " + ec.message(), "unavailable"));
      std::string line(asio::buffers_begin(op->reply.data()), asio::buffers_begin(op->reply.data()) + n);
      if (line == "OK\n") {
        if (op->reply.size() != n)  // Chromium never speaks first: extra bytes are a protocol violation
          return op->finish(make_error("agent sent data before the CDP request", "unavailable"));
        return op->finish(std::move(op->socket));
      }
      std::string why = line.rfind("ERR ", 0) == 0 ? line.substr(4, line.size() - 5) : "malformed reply";
      for (char& c : why)
        if (c < 0x20 || c > 0x7e) c = '?';
      op->finish(make_error("agent refused the CDP stream: " + why, "unavailable"));
    });
  });
}

}  // namespace kindling::node
