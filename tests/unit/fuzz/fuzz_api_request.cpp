// Fuzzes the HTTP API's input parsers: request targets and create bodies,
// and the CDP download-path rewrite of client messages.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gateway/api_request.hpp"
#include "gateway/cdp_download_path.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)kindling::gateway::parse_target(input);
  kindling::control::SessionLimits limits;
  (void)kindling::gateway::parse_create_session(input, limits);
  (void)kindling::gateway::sanitize_host_header(input);
  (void)kindling::gateway::rewrite_download_behavior(input, "/home/browser/downloads");
  return 0;
}
