// libFuzzer target for the API socket's HTTP parser and the JSON body
// parsers behind it: arbitrary bytes must give a request, "need more", or an
// error — never a crash, hang or unbounded allocation.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "vmm/api/http_request_parser.hpp"
#include "vmm/vmm_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kindling::vmm;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (!input.empty()) {
    HttpParseResult r = parse_http_request(input);
    if (r.state != HttpParseResult::State::kComplete) break;
    if (r.consumed == 0 || r.consumed > input.size()) __builtin_trap();
    auto body = parse_json_body(r.request.body);
    if (body) {
      (void)parse_machine_config(*body, nullptr);
      (void)parse_boot_source(*body);
      (void)parse_action(*body);
      (void)parse_vm_state(*body);
      (void)parse_logger(*body);
    }
    input.remove_prefix(r.consumed);
  }
  return 0;
}
