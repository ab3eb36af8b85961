// libFuzzer target: what the agent's forward proxy parses from bytes it does
// not control: Chromium's proxy requests (steered by pages), an upstream
// HTTP proxy's reply heads, SOCKS5 replies, and the upstream-proxy JSON the
// host (and the API) hands over. The first byte picks the parser. Built only
// with -DKINDLING_FUZZ=ON and clang:
//   ./fuzz_forward_proxy -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agent/proxy_request.hpp"
#include "agent/socks5.hpp"
#include "common/upstream_proxy.hpp"

using namespace kindling;
using namespace kindling::agent;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto end = find_head_end(input);
      auto req = parse_proxy_request(end ? input.substr(0, *end) : input);
      if (req && !req->connect) (void)with_proxy_authorization(req->absolute_head, "user", "pass");
      if (req) (void)is_local_host_name(req->host);
      return 0;
    }
    case 1:
      (void)parse_reply_status(input);
      (void)proxy_error_response(input);
      return 0;
    case 2:
      (void)socks5::parse_method_choice(input.substr(0, 2), data[0] & 4);
      (void)socks5::parse_auth_reply(input.substr(0, 2));
      if (auto n = socks5::reply_length(input); n && *n > 0 && *n <= input.size())
        (void)socks5::parse_connect_reply(input.substr(0, *n));
      (void)socks5::connect_request(input.substr(0, 255), 443);
      return 0;
    default: {
      auto j = nlohmann::json::parse(input, nullptr, false);
      if (j.is_discarded()) return 0;
      auto proxy = parse_upstream_proxy(j);
      if (proxy) {
        (void)to_public_json(*proxy);
        (void)proxy_bypassed(*proxy, "www.example.com");
        auto again = parse_upstream_proxy(to_protocol_json(*proxy));
        if (!again || !(*again == *proxy)) __builtin_trap();  // the protocol must round-trip
      }
      return 0;
    }
  }
}
