// One client TCP connection speaking HTTP/1.1 with keep-alive, until it
// upgrades to a websocket (handed to the gateway) or closes.
#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <memory>
#include <optional>

#include "gateway/gateway.hpp"

namespace kindling::gateway {

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(boost::asio::ip::tcp::socket socket, Gateway& gateway);
  void start();

 private:
  void read_request();
  void on_read(boost::beast::error_code ec);
  // Sends one answer, then reads the next request or closes. `timeout`
  // bounds the whole write.
  template <class Message>
  void write(Message res, std::chrono::steady_clock::duration timeout);
  static bool is_upload(const http::request_parser<http::string_body>::value_type& req);
  static bool is_extension_upload(const http::request_parser<http::string_body>::value_type& req);

  boost::beast::tcp_stream stream_;
  Gateway& gateway_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::size_t body_limit_ = 0;  // of the request being read
};

}  // namespace kindling::gateway
