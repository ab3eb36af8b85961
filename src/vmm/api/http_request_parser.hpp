// The one parser for bytes arriving on the API socket: HTTP/1.1 requests with
// a Content-Length body, bounded in every dimension (header bytes, header
// count, body size), no chunked encoding. Pure and allocation-bounded, so the
// fuzz target (tests/vmm/fuzz_http_request_parser.cpp) can drive it directly.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kindling::vmm {

inline constexpr size_t kMaxHttpHeaderBytes = 8 * 1024;
inline constexpr size_t kMaxHttpHeaders = 64;
inline constexpr size_t kMaxHttpBodyBytes = 51200;  // Firecracker's payload limit

struct HttpRequest {
  std::string method;
  std::string path;  // without query string
  std::string version;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool keep_alive = true;
};

struct HttpParseResult {
  enum class State { kIncomplete, kComplete, kError };
  State state = State::kIncomplete;
  HttpRequest request;     // when kComplete
  size_t consumed = 0;     // bytes of the buffer the request used
  int error_status = 400;  // when kError
  std::string error;
};

// Parses the first request in `buffer`. kIncomplete means "read more"; the
// caller must still bound its buffer (kMaxHttpHeaderBytes + kMaxHttpBodyBytes).
HttpParseResult parse_http_request(std::string_view buffer);

std::string format_http_response(int status, std::string_view body, bool keep_alive);

}  // namespace kindling::vmm
