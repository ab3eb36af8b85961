// Closing a client connection without losing what we said last.
//
// When the gateway closes a TCP connection while the client is still
// sending (a request body over the limit that we answered with 413, a
// websocket message over the limit that we answered with a 1009 close
// frame, a session ended mid-upload), the kernel answers the unread bytes
// with a reset. A client that is mid-write then fails with EPIPE or
// ECONNRESET and never reads the answer that is already in its receive
// buffer. So we half-close (our FIN goes after the answer), read and
// discard until the client closes too, and only then close: a "lingering
// close", as HTTP servers do. Bounded in bytes and time so that a client
// cannot hold the connection, or our CPU, by never stopping.
//
// LingeringStream is a beast::tcp_stream whose websocket teardown lingers
// the same way. Beast's own TCP teardown stops draining after the first
// read and closes with data unread, which loses the close frame.
#pragma once

#include <boost/asio/compose.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <array>
#include <chrono>
#include <memory>

namespace kindling::gateway {

struct LingerLimits {
  std::size_t max_bytes = std::size_t{256} << 20;  // above the largest message a client may send
  std::chrono::milliseconds max_time{5000};
};

namespace detail {

class LingerOp {
 public:
  LingerOp(boost::beast::tcp_stream& stream, LingerLimits limits)
      : stream_(stream),
        limits_(limits),
        deadline_(std::chrono::steady_clock::now() + limits.max_time),
        buffer_(std::make_unique<std::array<char, 64 * 1024>>()) {}

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
    if (!started_) {
      started_ = true;
      boost::system::error_code ignored;
      stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
    } else {
      drained_ += n;
      // EOF is the client closing after reading our answer: the good end.
      // Anything else (timeout, reset, too much) ends the wait as well.
      if (ec || drained_ > limits_.max_bytes) {
        boost::system::error_code ignored;
        stream_.socket().close(ignored);
        return self.complete(ec == boost::asio::error::eof ? boost::system::error_code{} : ec);
      }
    }
    stream_.expires_at(deadline_);
    stream_.async_read_some(boost::asio::buffer(*buffer_), std::move(self));
  }

 private:
  boost::beast::tcp_stream& stream_;
  LingerLimits limits_;
  std::chrono::steady_clock::time_point deadline_;
  std::unique_ptr<std::array<char, 64 * 1024>> buffer_;
  std::size_t drained_ = 0;
  bool started_ = false;
};

}  // namespace detail

// Half-closes `stream`, discards what the peer still sends until it closes
// (or a limit is hit), then closes the socket and calls `handler(ec)`.
template <class Handler>
auto async_lingering_close(boost::beast::tcp_stream& stream, Handler&& handler, LingerLimits limits = {}) {
  return boost::asio::async_compose<Handler, void(boost::system::error_code)>(detail::LingerOp(stream, limits),
                                                                              handler, stream);
}

class LingeringStream : public boost::beast::tcp_stream {
 public:
  explicit LingeringStream(boost::beast::tcp_stream&& stream) : boost::beast::tcp_stream(std::move(stream)) {}
};

// Found by argument-dependent lookup from Beast's websocket close and
// failure paths, and preferred over Beast's overload for basic_stream.
template <class TeardownHandler>
void async_teardown(boost::beast::role_type, LingeringStream& stream, TeardownHandler&& handler) {
  async_lingering_close(stream, std::forward<TeardownHandler>(handler));
}

inline void teardown(boost::beast::role_type, LingeringStream& stream, boost::system::error_code& ec) {
  stream.socket().close(ec);
}

}  // namespace kindling::gateway
