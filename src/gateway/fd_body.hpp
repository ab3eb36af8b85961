// A Beast body that streams an open file descriptor, so the gateway can send
// a session's download without holding it in memory. The length is fixed
// when the response is made (what the file held when it was opened: the
// machine may still be writing it); the file is read in 64 KiB slices with
// pread, and a file that shrinks under the reader ends the response with an
// error rather than a short body behind a longer Content-Length.
#pragma once

#include <boost/beast/http.hpp>
#include <boost/optional.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <utility>

#include "common/unique_fd.hpp"

namespace kindling::gateway {

struct FdBody {
  struct value_type {
    UniqueFd fd;
    std::uint64_t size = 0;
  };

  static std::uint64_t size(const value_type& body) { return body.size; }

  class writer {
   public:
    using const_buffers_type = boost::asio::const_buffer;
    static constexpr std::size_t kSliceBytes = 64 * 1024;

    template <bool isRequest, class Fields>
    writer(const boost::beast::http::header<isRequest, Fields>&, const value_type& body) : body_(body) {}

    void init(boost::beast::error_code& ec) {
      slice_ = std::make_unique<char[]>(kSliceBytes);
      ec = {};
    }

    boost::optional<std::pair<const_buffers_type, bool>> get(boost::beast::error_code& ec) {
      if (offset_ >= body_.size) {
        ec = {};
        return boost::none;
      }
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kSliceBytes, body_.size - offset_));
      ssize_t n;
      do n = ::pread(body_.fd.get(), slice_.get(), want, static_cast<off_t>(offset_));
      while (n < 0 && errno == EINTR);
      if (n < 0) {
        ec = boost::beast::error_code(errno, boost::system::system_category());
        return boost::none;
      }
      if (n == 0) {
        ec = boost::beast::http::error::short_read;  // the file shrank since it was opened
        return boost::none;
      }
      offset_ += static_cast<std::uint64_t>(n);
      ec = {};
      return std::make_pair(const_buffers_type(slice_.get(), static_cast<std::size_t>(n)), offset_ < body_.size);
    }

   private:
    const value_type& body_;
    std::unique_ptr<char[]> slice_;
    std::uint64_t offset_ = 0;
  };
};

using FileResponse = boost::beast::http::response<FdBody>;

}  // namespace kindling::gateway
