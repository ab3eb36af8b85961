// kindling gateway: the REST API, CDP discovery and the CDP websocket proxy,
// on one HTTP listener. Runs on the control layer's io_context thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "control/api_keys.hpp"
#include "control/extension_store.hpp"
#include "control/profile_store.hpp"
#include "control/session_manager.hpp"
#include "gateway/api_request.hpp"
#include "gateway/fd_body.hpp"
#include "gateway/http_response.hpp"

namespace kindling::gateway {

struct GatewayConfig {
  std::string listen_address = "127.0.0.1";
  unsigned short port = 8600;
  // Base of the URLs handed to clients ("http://browsers.example:8600");
  // empty: taken from each request's Host header.
  std::string public_url;
  std::size_t max_body_bytes = 1 << 20;
  // A file uploaded into a session (POST /v1/sessions/{id}/files); one
  // fetched from it is streamed, and bounded only by the machine's scratch.
  std::size_t max_upload_bytes = 64u << 20;
  // A zipped extension (POST /v1/extensions).
  std::size_t max_extension_bytes = 32u << 20;
  // Largest CDP message relayed from the browser (multi-MB screenshots and
  // DOM snapshots are normal), and from a client: Chromium itself drops
  // incoming DevTools messages over 100 MB, so the gateway refuses them
  // first, with close code 1009.
  std::size_t max_cdp_message_bytes = 256u << 20;
  std::size_t max_client_message_bytes = 100u << 20;
};

class Gateway {
 public:
  Gateway(boost::asio::io_context& io, control::SessionManager& sessions, const control::ApiKeys& keys,
          GatewayConfig config);
  ~Gateway();

  // Binds and starts accepting; returns the bound endpoint.
  Result<boost::asio::ip::tcp::endpoint> listen();
  void stop();

  // Entry points used by HTTP connections. A handler answers once, through
  // `reply`, or through `reply_file` for a file streamed from a descriptor.
  void handle(Request req, std::function<void(Response)> reply, std::function<void(FileResponse)> reply_file);
  void upgrade(boost::beast::tcp_stream stream, Request req);

  const GatewayConfig& config() const { return config_; }
  // Where uploaded extensions live; without one, /v1/extensions is 404 and
  // a create that names extensions is refused.
  void set_extension_store(control::ExtensionStore* store) { extensions_ = store; }
  // Where saved browser profiles live; without one, /v1/profiles is 404.
  void set_profile_store(control::ProfileStore* store) { profiles_ = store; }
  control::SessionManager& sessions() { return sessions_; }

  // "http://host:port" for URLs handed to this request's client.
  std::string base_url(const Request& req) const;

 private:
  void accept_next();
  // The id of the valid API key the request carries, if any.
  std::optional<std::string> api_key_id(const Request& req) const;
  bool has_api_key(const Request& req) const { return api_key_id(req).has_value(); }
  // API key, or the session's own token in ?token= (CDP routes only).
  bool may_use_session(const Request& req, const Target& target, const control::LiveSession& s) const;
  nlohmann::json session_json(const Request& req, const control::SessionRecord& r);
  // /v1/sessions/{id}/files[/{name}]: downloads listed and fetched, uploads.
  void handle_files(const Request& req, const std::vector<std::string>& seg, const Target& target,
                    std::function<void(Response)> reply, std::function<void(FileResponse)> reply_file);
  // /v1/extensions[/{id}] (extension_routes.cpp).
  void handle_extensions(const Request& req, const std::vector<std::string>& seg, std::function<void(Response)> reply);
  // Fills in each requested extension's host folder; 400 naming an unknown id.
  Status resolve_extensions(control::CreateSessionOptions& options) const;
  // /v1/profiles[/{id}] (profile_routes.cpp).
  void handle_profiles(const Request& req, const std::vector<std::string>& seg, std::function<void(Response)> reply);

  boost::asio::io_context& io_;
  control::SessionManager& sessions_;
  const control::ApiKeys& keys_;
  GatewayConfig config_;
  boost::asio::ip::tcp::acceptor acceptor_;
  control::ExtensionStore* extensions_ = nullptr;
  control::ProfileStore* profiles_ = nullptr;
};

}  // namespace kindling::gateway
