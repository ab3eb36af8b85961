// A small blocking HTTP client for the CLI's calls to a running server.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace kindling::cli {

struct ApiResponse {
  int status = 0;
  nlohmann::json body;
};

class ApiClient {
 public:
  // base_url: "http://host:port" (https is not spoken by the CLI).
  ApiClient(std::string base_url, std::string api_key) : base_url_(std::move(base_url)), api_key_(std::move(api_key)) {}
  Result<ApiResponse> call(const std::string& method, const std::string& path, const std::string& body = "",
                           const std::string& content_type = "application/json");

 private:
  std::string base_url_;
  std::string api_key_;
};

// Where the CLI's API commands find the server and its key.
struct ClientOptions {
  std::string server = "http://127.0.0.1:8600";
  std::string api_key;
  std::string data_dir;
};

// --api-key, else KINDLING_API_KEY, else the first line of <data-dir>/api-key.
std::string resolve_api_key(const ClientOptions& o);

// Prints the answer; a non-2xx status makes the command fail with its
// error. Returns the process exit status.
int report_response(const Result<ApiResponse>& r);

}  // namespace kindling::cli
