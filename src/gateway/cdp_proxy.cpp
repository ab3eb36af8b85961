#include "gateway/cdp_proxy.hpp"

#include <cstring>

#include "common/log.hpp"
#include "gateway/cdp_download_path.hpp"
#include "gateway/gateway.hpp"

namespace kindling::gateway {

namespace beast = boost::beast;
namespace websocket = beast::websocket;

namespace {

// RFC 6455 limits a close frame's reason to 123 bytes.
websocket::close_reason make_reason(int code, std::string reason) {
  if (reason.size() > 123) reason.resize(123);
  websocket::close_reason r;
  r.code = static_cast<std::uint16_t>(code);
  r.reason = reason;
  return r;
}

constexpr auto kBrowserLossGrace = std::chrono::milliseconds(1500);

}  // namespace

void CdpProxy::start(Gateway& gateway, std::shared_ptr<control::LiveSession> session, beast::tcp_stream stream,
                     Request upgrade, std::string browser_path) {
  std::shared_ptr<CdpProxy> proxy(
      new CdpProxy(gateway, std::move(session), std::move(stream), std::move(upgrade), std::move(browser_path)));
  proxy->connect_browser();
}

CdpProxy::CdpProxy(Gateway& gateway, std::shared_ptr<control::LiveSession> session, beast::tcp_stream stream,
                   Request upgrade, std::string browser_path)
    : gateway_(gateway),
      session_(std::move(session)),
      pre_upgrade_(std::move(stream)),
      upgrade_(std::move(upgrade)),
      browser_path_(std::move(browser_path)),
      grace_timer_(pre_upgrade_.get_executor()) {}

CdpProxy::~CdpProxy() = default;

void CdpProxy::refuse(http::status status, const std::string& code, const std::string& message) {
  auto res = std::make_shared<Response>(error_response(upgrade_, status, code, message));
  res->keep_alive(false);
  pre_upgrade_.expires_after(std::chrono::seconds(10));
  http::async_write(pre_upgrade_, *res, [self = shared_from_this(), res](beast::error_code, std::size_t) {
    beast::error_code ignored;
    self->pre_upgrade_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  });
}

void CdpProxy::connect_browser() {
  gateway_.sessions().open_cdp_stream(session_, [self = shared_from_this()](
                                                    Result<std::unique_ptr<node::AgentSocket>> stream) {
    if (!stream) {
      if (auto still = self->gateway_.sessions().find_ready(self->session_->record().id); !still)
        return self->refuse(status_for(still.error().code), still.error().code, still.error().message);
      return self->refuse(http::status::service_unavailable, "unavailable", stream.error().message);
    }
    self->browser_ = std::make_unique<BrowserSocket>(std::move(*stream.value()));
    self->browser_->read_message_max(self->gateway_.config().max_cdp_message_bytes);
    self->browser_->auto_fragment(false);
    self->browser_->async_handshake("127.0.0.1", self->browser_path_, [self](beast::error_code ec) {
      // A session that ended meanwhile explains the failure better than the
      // broken handshake does.
      if (ec) {
        if (auto still = self->gateway_.sessions().find_ready(self->session_->record().id); !still)
          return self->refuse(status_for(still.error().code), still.error().code, still.error().message);
      }
      if (ec == websocket::error::upgrade_declined)
        return self->refuse(http::status::not_found, "not_found", "the browser has no target " + self->browser_path_);
      if (ec)
        return self->refuse(http::status::bad_gateway, "bad_gateway",
                            "the browser refused the websocket: " + ec.message());
      self->accept_client();
    });
  });
}

void CdpProxy::accept_client() {
  client_ = std::make_unique<ClientSocket>(LingeringStream(std::move(pre_upgrade_)));
  client_->read_message_max(gateway_.config().max_client_message_bytes);
  client_->auto_fragment(false);
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = std::chrono::seconds(30);
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  client_->set_option(timeouts);
  client_->set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "kindling"); }));
  client_->async_accept(upgrade_, [self = shared_from_this()](beast::error_code ec) {
    if (ec) return self->finish();
    // The session may have ended while the handshakes ran.
    auto still = self->gateway_.sessions().find_ready(self->session_->record().id);
    if (!still) {
      return self->close_client(make_reason(control::close_code::kReleased, still.error().message));
    }
    self->gateway_.sessions().attach(self->session_, self);
    self->attached_ = true;
    spdlog::debug("session {}: CDP client connected to {}", self->session_->record().id, self->browser_path_);
    self->relay_client_to_browser();
    self->relay_browser_to_client();
  });
}

void CdpProxy::relay_client_to_browser() {
  client_->async_read(from_client_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec) {
      if (ec == websocket::error::message_too_big) {
        spdlog::warn("session {}: client message over {} bytes refused (1009)", self->session_->record().id,
                     self->gateway_.config().max_client_message_bytes);
        beast::error_code ignored;
        self->browser_->next_layer().close(ignored);
        return self->close_client(make_reason(websocket::close_code::too_big,
                                              "message larger than " +
                                                  std::to_string(self->gateway_.config().max_client_message_bytes) +
                                                  " bytes"));
      }
      // The client left (close frame, reset or error): let the browser side go.
      beast::error_code ignored;
      self->browser_->next_layer().close(ignored);
      if (!self->client_closing_) self->finish();
      return;
    }
    self->browser_->text(self->client_->got_text());
    if (self->client_->got_text()) self->keep_downloads_in_session();
    self->browser_->async_write(self->from_client_.data(), [self](beast::error_code ec, std::size_t) {
      self->from_client_.clear();
      if (ec) return self->close_client(make_reason(websocket::close_code::internal_error, "browser connection lost"));
      self->relay_client_to_browser();
    });
  });
}

void CdpProxy::keep_downloads_in_session() {
  auto bytes = from_client_.cdata();
  auto rewritten = rewrite_download_behavior(
      std::string_view(static_cast<const char*>(bytes.data()), bytes.size()), control::kDownloadsDir);
  if (!rewritten) return;
  from_client_.clear();
  auto space = from_client_.prepare(rewritten->size());
  std::memcpy(space.data(), rewritten->data(), rewritten->size());
  from_client_.commit(rewritten->size());
}

void CdpProxy::relay_browser_to_client() {
  browser_->async_read(from_browser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec) {
      if (self->client_closing_ || self->finished_) return;
      if (ec == websocket::error::closed) {
        auto reason = self->browser_->reason();
        int code = reason.code ? static_cast<int>(reason.code) : static_cast<int>(websocket::close_code::normal);
        std::string why(reason.reason.data(), reason.reason.size());
        return self->close_client(make_reason(code, why.empty() ? "browser closed the connection" : why));
      }
      // The stream dropped without a close frame: usually the browser died,
      // and the session is about to end with the real reason. Give it a
      // moment to say so before reporting a bare lost connection.
      self->grace_timer_.expires_after(kBrowserLossGrace);
      self->grace_timer_.async_wait([self](beast::error_code ec) {
        if (ec) return;
        self->close_client(make_reason(websocket::close_code::internal_error, "browser connection lost"));
      });
      return;
    }
    self->client_->text(self->browser_->got_text());
    self->writing_to_client_ = true;
    self->client_->async_write(self->from_browser_.data(), [self](beast::error_code ec, std::size_t) {
      self->writing_to_client_ = false;
      self->from_browser_.clear();
      if (self->pending_close_) {
        auto reason = *self->pending_close_;
        self->pending_close_.reset();
        return self->close_client(reason);
      }
      if (ec) return self->finish();
      self->relay_browser_to_client();
    });
  });
}

void CdpProxy::terminate(int close_code, const std::string& reason) {
  if (finished_) return;
  grace_timer_.cancel();
  attached_ = false;  // the session already forgot its clients
  beast::error_code ignored;
  if (browser_) browser_->next_layer().close(ignored);
  if (client_) close_client(make_reason(close_code, reason));
}

void CdpProxy::close_client(websocket::close_reason reason) {
  if (client_closing_ || finished_ || !client_) return;
  if (writing_to_client_) {
    pending_close_ = reason;  // Beast allows one write at a time; close after it
    return;
  }
  client_closing_ = true;
  client_->async_close(reason, [self = shared_from_this()](beast::error_code) { self->finish(); });
}

void CdpProxy::finish() {
  if (finished_) return;
  finished_ = true;
  grace_timer_.cancel();
  if (attached_) {
    attached_ = false;
    gateway_.sessions().detach(session_, this);
  }
  beast::error_code ignored;
  if (browser_) browser_->next_layer().close(ignored);
  if (client_) beast::get_lowest_layer(*client_).socket().close(ignored);
  spdlog::debug("session {}: CDP client gone", session_->record().id);
}

}  // namespace kindling::gateway
