// Maps Firecracker API requests onto the Vmm: parse and validate the body
// into typed config (vmm_config), call one Vmm method, shape the reply.
// Errors become {"fault_message": "..."} with status 400, as Firecracker.
#pragma once

#include <string>

#include "vmm/api/http_request_parser.hpp"
#include "vmm/vmm.hpp"

namespace kindling::vmm {

struct ApiResponse {
  int status = 204;
  std::string body;  // JSON, empty for 204
};

ApiResponse handle_api_request(Vmm& vmm, const HttpRequest& request);
std::string fault_body(std::string_view message);

}  // namespace kindling::vmm
