#include "cli/api_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>

namespace kindling::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

Result<ApiResponse> ApiClient::call(const std::string& method, const std::string& path, const std::string& body,
                                    const std::string& content_type) {
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
      req.set(http::field::content_type, content_type);
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

std::string resolve_api_key(const ClientOptions& o) {
  if (!o.api_key.empty()) return o.api_key;
  if (const char* env = std::getenv("KINDLING_API_KEY"); env && *env) return env;
  std::string dir = o.data_dir;
  if (dir.empty()) {
    const char* env = std::getenv("KINDLING_DATA_DIR");
    dir = env && *env ? env : "/var/lib/kindling";
  }
  std::ifstream in(dir + "/api-key");
  std::string key;
  std::getline(in, key);
  if (key.empty())
    std::cerr << "warning: no API key: none given with --api-key or KINDLING_API_KEY, and no " << dir
              << "/api-key (set --data-dir to the server's data directory)\n";
  return key;
}

int report_response(const Result<ApiResponse>& r) {
  if (!r) {
    std::cerr << "error: " << r.error().message << "\n";
    return 2;
  }
  if (r->status >= 200 && r->status < 300) {
    std::cout << r->body.dump(2) << "\n";
    return 0;
  }
  std::string message = r->body.is_object() && r->body.contains("error")
                            ? r->body["error"].value("message", r->body.dump())
                            : r->body.dump();
  std::cerr << "error: HTTP " << r->status << ": " << message << "\n";
  return 1;
}

}  // namespace kindling::cli
