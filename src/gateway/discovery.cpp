#include "gateway/discovery.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "gateway/gateway.hpp"

namespace kindling::gateway {

namespace beast = boost::beast;

namespace {

constexpr std::size_t kMaxDiscoveryBytes = 8u << 20;
constexpr auto kDiscoveryTimeout = std::chrono::seconds(10);

void rewrite_entry(nlohmann::json& entry, const std::string& ws_base, const std::string& token) {
  if (!entry.is_object()) return;
  entry.erase("devtoolsFrontendUrl");
  entry.erase("devtoolsFrontendUrlCompat");
  auto it = entry.find("webSocketDebuggerUrl");
  if (it == entry.end() || !it->is_string()) return;
  const auto& url = it->get_ref<const std::string&>();
  auto pos = url.find("/devtools/");
  if (pos == std::string::npos) {
    entry.erase(it);
    return;
  }
  *it = ws_base + url.substr(pos) + "?token=" + token;
}

struct DiscoveryFetch : std::enable_shared_from_this<DiscoveryFetch> {
  explicit DiscoveryFetch(const boost::asio::any_io_executor& ex) : timer(ex) {}
  std::unique_ptr<node::AgentSocket> socket;
  boost::asio::steady_timer timer;
  http::request<http::empty_body> request;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
};

}  // namespace

nlohmann::json rewrite_discovery(nlohmann::json body, const std::string& ws_base, const std::string& token) {
  if (body.is_array())
    for (auto& e : body) rewrite_entry(e, ws_base, token);
  else
    rewrite_entry(body, ws_base, token);
  return body;
}

void serve_discovery(Gateway& gateway, const Request& req, std::shared_ptr<control::LiveSession> session,
                     const std::string& browser_path, std::function<void(Response)> reply) {
  auto shared_req = std::make_shared<Request>(req);
  std::string http_base = gateway.base_url(req) + "/v1/sessions/" + session->record().id;
  std::string ws_base = "ws" + http_base.substr(4);
  gateway.sessions().open_cdp_stream(session, [=](Result<std::unique_ptr<node::AgentSocket>> stream) {
    if (!stream) return reply(error_response(*shared_req, stream.error()));
    auto op = std::make_shared<DiscoveryFetch>(stream.value()->get_executor());
    op->socket = std::move(stream).value();
    op->parser.body_limit(kMaxDiscoveryBytes);
    op->request = {http::verb::get, browser_path, 11};
    // Chromium only answers Host headers that are an IP or localhost.
    op->request.set(http::field::host, "127.0.0.1");
    op->request.keep_alive(false);
    op->timer.expires_after(kDiscoveryTimeout);
    op->timer.async_wait([op](boost::system::error_code ec) {
      if (!ec) op->socket->close(ec);
    });
    http::async_write(*op->socket, op->request, [=](beast::error_code ec, std::size_t) {
      if (ec) return reply(error_response(*shared_req, http::status::bad_gateway, "bad_gateway",
                                          "browser discovery request failed: " + ec.message()));
      http::async_read(*op->socket, op->buffer, op->parser, [=](beast::error_code ec, std::size_t) {
        op->timer.cancel();
        if (ec) return reply(error_response(*shared_req, http::status::bad_gateway, "bad_gateway",
                                            "browser discovery answer unreadable: " + ec.message()));
        auto& res = op->parser.get();
        if (res.result() != http::status::ok)
          return reply(error_response(*shared_req, http::status::not_found, "not_found",
                                      "the browser has no discovery endpoint " + browser_path));
        auto body = nlohmann::json::parse(res.body(), nullptr, false);
        if (body.is_discarded())
          return reply(error_response(*shared_req, http::status::bad_gateway, "bad_gateway",
                                      "browser discovery answer is not JSON"));
        reply(json_response(*shared_req, http::status::ok, rewrite_discovery(std::move(body), ws_base, session->token())));
      });
    });
  });
}

}  // namespace kindling::gateway
