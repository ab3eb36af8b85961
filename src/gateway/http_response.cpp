#include "gateway/http_response.hpp"

namespace kindling::gateway {

Response json_response(const Request& req, http::status status, const nlohmann::json& body) {
  Response res{status, req.version()};
  res.set(http::field::server, "kindling");
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(req.keep_alive());
  res.body() = body.dump() + "\n";
  res.prepare_payload();
  return res;
}

http::status status_for(const std::string& code) {
  if (code == "bad_request") return http::status::bad_request;
  if (code == "unauthorized") return http::status::unauthorized;
  if (code == "not_found") return http::status::not_found;
  if (code == "method_not_allowed") return http::status::method_not_allowed;
  if (code == "conflict") return http::status::conflict;
  if (code == "payload_too_large") return http::status::payload_too_large;
  if (code == "rate_limited" || code == "session_limit") return http::status::too_many_requests;
  if (code == "capacity" || code == "unavailable") return http::status::service_unavailable;
  if (code == "bad_gateway") return http::status::bad_gateway;
  if (code == "unsupported") return http::status::not_implemented;
  return http::status::internal_server_error;
}

Response error_response(const Request& req, http::status status, const std::string& code, const std::string& message) {
  auto res = json_response(req, status, {{"error", {{"code", code}, {"message", message}}}});
  if (status == http::status::unauthorized) res.set(http::field::www_authenticate, "Bearer");
  if (status == http::status::service_unavailable || status == http::status::too_many_requests)
    res.set(http::field::retry_after, "5");
  return res;
}

Response error_response(const Request& req, const Error& error) {
  std::string code = error.code.empty() ? "internal" : error.code;
  auto res = error_response(req, status_for(code), code, error.message);
  if (error.retry_after_seconds > 0) res.set(http::field::retry_after, std::to_string(error.retry_after_seconds));
  return res;
}

}  // namespace kindling::gateway
