#include "cli/api_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace kindling::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

Result<ApiResponse> ApiClient::call(const std::string& method, const std::string& path, const std::string& body) {
  constexpr std::string_view kScheme = "http://";
  if (base_url_.rfind(kScheme, 0) != 0) return make_error("server URL must start with http:// (got " + base_url_ + ")");
  std::string hostport = base_url_.substr(kScheme.size());
  if (auto slash = hostport.find('/'); slash != std::string::npos) hostport.resize(slash);
  std::string host = hostport, port = "80";
  if (auto colon = hostport.rfind(':'); colon != std::string::npos && hostport.find(']') == std::string::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
  }
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(120));
    stream.connect(resolver.resolve(host, port));
    http::request<http::string_body> req{http::string_to_verb(method), path, 11};
    req.set(http::field::host, hostport);
    req.set(http::field::user_agent, "kindling-cli");
    if (!api_key_.empty()) req.set(http::field::authorization, "Bearer " + api_key_);
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(stream, buffer, parser);
    auto& res = parser.get();
    ApiResponse out;
    out.status = static_cast<int>(res.result_int());
    out.body = nlohmann::json::parse(res.body(), nullptr, false);
    if (out.body.is_discarded()) out.body = res.body();
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    return out;
  } catch (const std::exception& e) {
    return make_error("cannot reach kindling server at " + base_url_ + ": " + e.what());
  }
}

}  // namespace kindling::cli
