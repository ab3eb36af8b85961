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
  Result<ApiResponse> call(const std::string& method, const std::string& path, const std::string& body = "");

 private:
  std::string base_url_;
  std::string api_key_;
};

}  // namespace kindling::cli
