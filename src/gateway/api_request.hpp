// The HTTP API's input boundary: request targets and bodies parsed and
// validated into typed values. Stands alone (no I/O) so it can be fuzzed.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "control/session_options.hpp"

namespace kindling::gateway {

// A request target split into decoded path segments and query parameters.
struct Target {
  std::vector<std::string> segments;  // "/v1/sessions/x/" -> {"v1","sessions","x"}
  bool trailing_slash = false;
  std::map<std::string, std::string> query;
};

// Rejects targets that are not origin-form, too long, or badly encoded.
Result<Target> parse_target(std::string_view target);

// The body of POST /v1/sessions. Empty means all defaults. Unknown fields,
// wrong types and out-of-range values are errors with code "bad_request".
Result<control::CreateSessionOptions> parse_create_session(std::string_view body, const control::SessionLimits& limits);

// "host[:port]" from a Host header if it is plausible, else nullopt.
std::optional<std::string> sanitize_host_header(std::string_view host);

}  // namespace kindling::gateway
