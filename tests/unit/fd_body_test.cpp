// FdBody: a session file streamed from its descriptor, in slices, at the
// length it had when the response was made.
#include "gateway/fd_body.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/serializer.hpp>
#include <string>

namespace kindling::gateway {
namespace {

namespace http = boost::beast::http;

UniqueFd temp_file_with(const std::string& data) {
  char path[] = "/tmp/fd_body_test.XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::unlink(path);
  EXPECT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  return UniqueFd(fd);
}

// Serializes the whole response as a client would receive it; `ec` is the
// first error the serializer reported.
std::string serialize(FileResponse& res, boost::beast::error_code& ec, int* slices = nullptr) {
  http::serializer<false, FdBody> sr(res);
  std::string out;
  while (!sr.is_done()) {
    sr.next(ec, [&](boost::beast::error_code&, const auto& buffers) {
      std::size_t n = 0;
      for (auto b : boost::beast::buffers_range_ref(buffers)) {
        out.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      if (slices && sr.is_header_done()) ++*slices;
      sr.consume(n);
    });
    if (ec) break;
  }
  return out;
}

FileResponse response_for(UniqueFd fd, std::uint64_t size) {
  FileResponse res{http::status::ok, 11};
  res.body().fd = std::move(fd);
  res.body().size = size;
  res.prepare_payload();
  return res;
}

TEST(FdBody, StreamsTheWholeFileInSlices) {
  std::string data(300 * 1024 + 7, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 % 251);
  auto res = response_for(temp_file_with(data), data.size());
  boost::beast::error_code ec;
  int slices = 0;
  std::string out = serialize(res, ec, &slices);
  ASSERT_FALSE(ec) << ec.message();
  auto body_at = out.find("\r\n\r\n");
  ASSERT_NE(body_at, std::string::npos);
  EXPECT_NE(out.find("Content-Length: " + std::to_string(data.size())), std::string::npos);
  EXPECT_EQ(out.substr(body_at + 4), data);
  EXPECT_GE(slices, 4);  // 300 KiB in 64 KiB slices, never one buffer
}

TEST(FdBody, SendsOnlyWhatTheFileHeldWhenOpened) {
  auto fd = temp_file_with("0123456789");
  int raw = fd.get();
  auto res = response_for(std::move(fd), 4);
  ASSERT_EQ(::write(raw, "more", 4), 4);  // still being written
  boost::beast::error_code ec;
  std::string out = serialize(res, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(out.substr(out.find("\r\n\r\n") + 4), "0123");
}

TEST(FdBody, AFileThatShrankIsAnErrorNotAShortBody) {
  auto fd = temp_file_with(std::string(100000, 'x'));
  ASSERT_EQ(::ftruncate(fd.get(), 1000), 0);
  auto res = response_for(std::move(fd), 100000);
  boost::beast::error_code ec;
  serialize(res, ec);
  EXPECT_EQ(ec, http::error::short_read);
}

}  // namespace
}  // namespace kindling::gateway
