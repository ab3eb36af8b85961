// Building the gateway's HTTP responses: JSON bodies and the error shape
// {error: {code, message}} with the status that matches the code.
#pragma once

#include <boost/beast/http.hpp>

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace kindling::gateway {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Beast's string_view is Boost's; the rest of Kindling speaks std.
inline std::string_view to_std(boost::beast::string_view s) { return {s.data(), s.size()}; }

Response json_response(const Request& req, http::status status, const nlohmann::json& body);
Response error_response(const Request& req, http::status status, const std::string& code, const std::string& message);
// Maps an Error's code to its status ("not_found" -> 404, ...).
Response error_response(const Request& req, const Error& error);
http::status status_for(const std::string& code);

}  // namespace kindling::gateway
