#include "gateway/http_connection.hpp"

#include <algorithm>

#include <boost/beast/websocket/rfc6455.hpp>

#include "common/log.hpp"
#include "gateway/lingering_close.hpp"

namespace kindling::gateway {

namespace beast = boost::beast;

namespace {
constexpr auto kRequestTimeout = std::chrono::seconds(60);
constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
}  // namespace

HttpConnection::HttpConnection(boost::asio::ip::tcp::socket socket, Gateway& gateway)
    : stream_(std::move(socket)), gateway_(gateway) {}

void HttpConnection::start() { read_request(); }

void HttpConnection::read_request() {
  parser_.emplace();
  parser_->header_limit(kMaxHeaderBytes);
  // Beast checks a Content-Length against the limit as the header ends, so
  // the header is read under the largest limit of any route; the route's own
  // limit is set once its target is known, before the body is read.
  const auto& config = gateway_.config();
  body_limit_ = std::max({config.max_body_bytes, config.max_upload_bytes, config.max_extension_bytes});
  parser_->body_limit(body_limit_);
  stream_.expires_after(kRequestTimeout);
  http::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec) return self->on_read(ec);
    // Only a file or extension upload may be larger than an API body.
    const auto& config = self->gateway_.config();
    self->body_limit_ = is_upload(self->parser_->get())             ? config.max_upload_bytes
                        : is_extension_upload(self->parser_->get()) ? config.max_extension_bytes
                                                                    : config.max_body_bytes;
    if (self->parser_->content_length() && *self->parser_->content_length() > self->body_limit_)
      return self->on_read(http::error::body_limit);
    self->parser_->body_limit(self->body_limit_);
    http::async_read(self->stream_, self->buffer_, *self->parser_,
                     [self](beast::error_code ec, std::size_t) { self->on_read(ec); });
  });
}

bool HttpConnection::is_upload(const http::request_parser<http::string_body>::value_type& req) {
  if (req.method() != http::verb::post) return false;
  std::string_view target(req.target().data(), req.target().size());
  target = target.substr(0, target.find('?'));
  return target.starts_with("/v1/sessions/") && target.ends_with("/files");
}

bool HttpConnection::is_extension_upload(const http::request_parser<http::string_body>::value_type& req) {
  if (req.method() != http::verb::post) return false;
  std::string_view target(req.target().data(), req.target().size());
  target = target.substr(0, target.find('?'));
  return target == "/v1/extensions" || target == "/v1/extensions/";
}

void HttpConnection::on_read(beast::error_code ec) {
  if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == boost::asio::error::eof ||
      ec == boost::asio::error::connection_reset || ec == boost::asio::error::operation_aborted) {
    beast::error_code ignored;
    stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
    return;
  }
  if (ec) {
    // Answer what can be answered, then drop the connection: after a parse
    // error the stream position is unknown.
    Request stub;
    stub.version(11);
    stub.keep_alive(false);
    Response res;
    if (ec == http::error::body_limit)
      res = error_response(stub, http::status::payload_too_large, "payload_too_large",
                           "request body larger than " + std::to_string(body_limit_) + " bytes");
    else if (ec == http::error::header_limit)
      res = error_response(stub, http::status::request_header_fields_too_large, "headers_too_large",
                           "request headers larger than " + std::to_string(kMaxHeaderBytes) + " bytes");
    else
      res = error_response(stub, http::status::bad_request, "bad_request", "malformed HTTP request: " + ec.message());
    res.keep_alive(false);
    write(std::move(res), kRequestTimeout);
    return;
  }
  Request req = parser_->release();
  if (beast::websocket::is_upgrade(req)) {
    stream_.expires_never();
    gateway_.upgrade(std::move(stream_), std::move(req));
    return;
  }
  gateway_.handle(
      std::move(req), [self = shared_from_this()](Response res) { self->write(std::move(res), kRequestTimeout); },
      [self = shared_from_this()](FileResponse res) {
        // A slow client still gets a big file: a second per MiB on top.
        auto timeout = kRequestTimeout + std::chrono::seconds(res.body().size >> 20);
        self->write(std::move(res), timeout);
      });
}

template <class Message>
void HttpConnection::write(Message res, std::chrono::steady_clock::duration timeout) {
  auto shared = std::make_shared<Message>(std::move(res));
  stream_.expires_after(timeout);
  http::async_write(stream_, *shared, [self = shared_from_this(), shared](beast::error_code ec, std::size_t) {
    if (ec) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
      return;
    }
    if (!shared->keep_alive()) {
      // The client may still be sending (a body we refused): let it finish
      // and read our answer before the socket goes.
      return async_lingering_close(self->stream_, [self](beast::error_code) {});
    }
    self->read_request();
  });
}

}  // namespace kindling::gateway
