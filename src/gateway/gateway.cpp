#include "gateway/gateway.hpp"

#include <unistd.h>

#include <cerrno>

#include <boost/asio/ip/address.hpp>

#include <cctype>

#include "common/log.hpp"
#include "common/secrets.hpp"
#include "gateway/cdp_proxy.hpp"
#include "gateway/discovery.hpp"
#include "gateway/http_connection.hpp"

namespace kindling::gateway {

namespace asio = boost::asio;
using control::SessionRecord;

Gateway::Gateway(asio::io_context& io, control::SessionManager& sessions, const control::ApiKeys& keys,
                 GatewayConfig config)
    : io_(io), sessions_(sessions), keys_(keys), config_(std::move(config)), acceptor_(io) {}

Gateway::~Gateway() { stop(); }

Result<asio::ip::tcp::endpoint> Gateway::listen() {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(config_.listen_address, ec);
  if (ec) return make_error("invalid listen address '" + config_.listen_address + "'");
  asio::ip::tcp::endpoint endpoint(address, config_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return make_error("cannot listen on " + config_.listen_address + ":" + std::to_string(config_.port) + ": " +
                            ec.message());
  accept_next();
  return acceptor_.local_endpoint();
}

void Gateway::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

void Gateway::accept_next() {
  acceptor_.async_accept([this](boost::system::error_code ec, asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      socket.set_option(asio::ip::tcp::no_delay(true), ec);
      std::make_shared<HttpConnection>(std::move(socket), *this)->start();
    }
    accept_next();
  });
}

std::string Gateway::base_url(const Request& req) const {
  if (!config_.public_url.empty()) return config_.public_url;
  if (auto host = sanitize_host_header(to_std(req[http::field::host]))) return "http://" + *host;
  auto ep = acceptor_.local_endpoint();
  return "http://" + ep.address().to_string() + ":" + std::to_string(ep.port());
}

std::optional<std::string> Gateway::api_key_id(const Request& req) const {
  auto auth = to_std(req[http::field::authorization]);
  // The auth scheme is case-insensitive (RFC 9110 11.1): "bearer" works too.
  constexpr std::string_view kBearer = "bearer ";
  auto scheme_is_bearer = [&] {
    if (auth.size() <= kBearer.size()) return false;
    for (std::size_t i = 0; i < kBearer.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(auth[i])) != kBearer[i]) return false;
    return true;
  };
  if (scheme_is_bearer()) {
    if (auto id = keys_.identify(auth.substr(kBearer.size()))) return id;
  }
  auto header = to_std(req["X-API-Key"]);
  if (header.empty()) return std::nullopt;
  return keys_.identify(header);
}

bool Gateway::may_use_session(const Request& req, const Target& target, const control::LiveSession& s) const {
  if (has_api_key(req)) return true;
  auto it = target.query.find("token");
  if (it == target.query.end()) return false;
  return constant_time_equal(it->second, s.token()) || keys_.verify(it->second);
}

nlohmann::json Gateway::session_json(const Request& req, const SessionRecord& r) {
  auto j = control::to_api_json(r);
  if (r.status == control::SessionStatus::kReady) {
    if (auto live = sessions_.find_ready(r.id)) {
      std::string http_base = base_url(req) + "/v1/sessions/" + r.id;
      std::string ws_base = "ws" + http_base.substr(4);  // http -> ws, https -> wss
      j["cdpUrl"] = ws_base + "/cdp?token=" + (*live)->token();
      j["cdpHttpUrl"] = http_base + "?token=" + (*live)->token();
    }
  }
  return j;
}

void Gateway::handle(Request req, std::function<void(Response)> reply,
                     std::function<void(FileResponse)> reply_file) {
  auto target = parse_target(to_std(req.target()));
  if (!target) return reply(error_response(req, target.error()));
  const auto& seg = target->segments;
  auto method = req.method();
  // Messages name the path only: the query may carry a token.
  const std::string path(to_std(req.target()).substr(0, to_std(req.target()).find('?')));
  auto not_allowed = [&] {
    reply(error_response(req, http::status::method_not_allowed, "method_not_allowed",
                         std::string(req.method_string()) + " is not allowed on " + path));
  };

  if (seg.size() == 1 && seg[0] == "healthz") {
    if (method != http::verb::get && method != http::verb::head) return not_allowed();
    nlohmann::json health = {{"status", "ok"}, {"liveSessions", sessions_.live_count()}};
    if (auto* pool = sessions_.pool())
      health["pool"] = {{"ready", pool->ready_count()}, {"starting", pool->starting_count()},
                        {"waiting", pool->waiting_count()}, {"target", pool->target_size()},
                        {"min", pool->config().min_size}, {"max", pool->config().max_size}};
    return reply(json_response(req, http::status::ok, health));
  }
  if (seg.empty() || seg[0] != "v1" || seg.size() < 2 || (seg[1] != "sessions" && seg[1] != "extensions" && seg[1] != "profiles"))
    return reply(error_response(req, http::status::not_found, "not_found", "no such route: " + path));

  // Discovery routes accept the session token, like the websocket routes.
  if (seg[1] == "sessions" && seg.size() >= 4 && seg[3] == "json") {
    if (method != http::verb::get) return not_allowed();
    auto live = sessions_.find_ready(seg[2]);
    if (!live) {
      if (!has_api_key(req) && live.error().code != "not_found" && live.error().code != "conflict")
        return reply(error_response(req, http::status::unauthorized, "unauthorized", "missing or invalid credentials"));
      return reply(error_response(req, live.error()));
    }
    if (!may_use_session(req, *target, **live))
      return reply(error_response(req, http::status::unauthorized, "unauthorized",
                                  "missing or invalid API key or session token"));
    std::string path = "/json";
    for (std::size_t i = 4; i < seg.size(); ++i) path += "/" + seg[i];
    return serve_discovery(*this, req, *live, path, std::move(reply));
  }

  const auto key_id = api_key_id(req);
  if (!key_id)
    return reply(error_response(req, http::status::unauthorized, "unauthorized",
                                "missing or invalid API key (Authorization: Bearer <key> or X-API-Key)"));
  if (seg[1] == "extensions") return handle_extensions(req, seg, std::move(reply));
  if (seg[1] == "profiles") return handle_profiles(req, seg, std::move(reply));

  if (seg.size() == 2) {
    if (method == http::verb::get) {
      bool all = target->query.count("all") && target->query.at("all") != "0" && target->query.at("all") != "false";
      auto list = sessions_.list(all);
      if (!list) return reply(error_response(req, list.error()));
      auto arr = nlohmann::json::array();
      for (auto& r : *list) arr.push_back(session_json(req, r));
      return reply(json_response(req, http::status::ok, {{"sessions", arr}}));
    }
    if (method == http::verb::post) {
      auto opts = parse_create_session(req.body(), sessions_.limits());
      if (!opts) return reply(error_response(req, opts.error()));
      if (auto st = resolve_extensions(*opts); !st) return reply(error_response(req, st.error()));
      opts->owner = *key_id;
      auto shared_req = std::make_shared<Request>(std::move(req));
      sessions_.create(*opts, [this, shared_req, reply = std::move(reply)](Result<SessionRecord> r) {
        if (!r) return reply(error_response(*shared_req, r.error()));
        reply(json_response(*shared_req, http::status::created, session_json(*shared_req, *r)));
      });
      return;
    }
    return not_allowed();
  }
  if (seg.size() == 3) {
    if (method == http::verb::get) {
      auto r = sessions_.get(seg[2]);
      if (!r) return reply(error_response(req, r.error()));
      return reply(json_response(req, http::status::ok, session_json(req, *r)));
    }
    if (method == http::verb::delete_) {
      auto r = sessions_.release(seg[2]);
      if (!r) return reply(error_response(req, r.error()));
      return reply(json_response(req, http::status::ok, session_json(req, *r)));
    }
    return not_allowed();
  }
  if (seg.size() >= 4 && seg[3] == "files") return handle_files(req, seg, *target, std::move(reply), std::move(reply_file));
  if (seg.size() == 4 && seg[3] == "events") {
    if (method != http::verb::get) return not_allowed();
    auto events = sessions_.events(seg[2]);
    if (!events) return reply(error_response(req, events.error()));
    auto arr = nlohmann::json::array();
    for (auto& e : *events) arr.push_back(control::to_api_json(e));
    return reply(json_response(req, http::status::ok, {{"id", seg[2]}, {"events", arr}}));
  }
  reply(error_response(req, http::status::not_found, "not_found", "no such route: " + path));
}

void Gateway::handle_files(const Request& req, const std::vector<std::string>& seg, const Target& target,
                           std::function<void(Response)> reply, std::function<void(FileResponse)> reply_file) {
  const auto method = req.method();
  const std::string& id = seg[2];
  auto file_json = [](const control::SessionFile& f) {
    nlohmann::json j = {{"name", f.name}, {"size", f.size}, {"complete", f.complete}};
    j["sha256"] = f.complete ? nlohmann::json(f.sha256) : nlohmann::json(nullptr);
    return j;
  };
  if (seg.size() == 4 && method == http::verb::get) {
    auto files = sessions_.list_files(id);
    if (!files) return reply(error_response(req, files.error()));
    auto arr = nlohmann::json::array();
    for (auto& f : *files) arr.push_back(file_json(f));
    return reply(json_response(req, http::status::ok, {{"id", id}, {"files", arr}}));
  }
  if (seg.size() == 4 && method == http::verb::post) {
    auto name = target.query.find("name");
    if (name == target.query.end())
      return reply(error_response(req, http::status::bad_request, "bad_request",
                                  "name the file: POST /v1/sessions/{id}/files?name=<file name>"));
    auto file = sessions_.upload_file(id, name->second, req.body());
    if (!file) return reply(error_response(req, file.error()));
    auto j = file_json(*file);
    j["path"] = std::string(control::kUploadsDir) + "/" + file->name;
    return reply(json_response(req, http::status::created, j));
  }
  if (seg.size() == 5 && method == http::verb::get) {
    std::uint64_t size = 0;
    auto fd = sessions_.open_file(id, seg[4], size);
    if (!fd) return reply(error_response(req, fd.error()));
    // The machine may still be writing it: what was there at open is sent.
    FileResponse res{http::status::ok, req.version()};
    res.set(http::field::server, "kindling");
    res.set(http::field::content_type, "application/octet-stream");
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(req.keep_alive());
    res.body().fd = std::move(*fd);
    res.body().size = size;
    res.prepare_payload();
    return reply_file(std::move(res));
  }
  if (seg.size() <= 5) return reply(error_response(req, http::status::method_not_allowed, "method_not_allowed",
                                                   "files: GET lists, POST ?name= uploads, GET files/<name> fetches"));
  reply(error_response(req, http::status::not_found, "not_found", "no such route"));
}

void Gateway::upgrade(boost::beast::tcp_stream stream, Request req) {
  auto refuse = [&](const Response& res) {
    auto shared_res = std::make_shared<Response>(res);
    shared_res->keep_alive(false);
    auto shared_stream = std::make_shared<boost::beast::tcp_stream>(std::move(stream));
    shared_stream->expires_after(std::chrono::seconds(10));
    http::async_write(*shared_stream, *shared_res, [shared_stream, shared_res](boost::system::error_code, std::size_t) {
      boost::system::error_code ignored;
      shared_stream->socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    });
  };
  auto target = parse_target(to_std(req.target()));
  if (!target) return refuse(error_response(req, target.error()));
  const auto& seg = target->segments;
  // /v1/sessions/{id}/cdp | /v1/sessions/{id}/devtools/{browser|page}/{targetId}
  bool cdp_route = seg.size() == 4 && seg[3] == "cdp";
  bool devtools_route = seg.size() == 6 && seg[3] == "devtools" && (seg[4] == "browser" || seg[4] == "page");
  if (seg.size() < 4 || seg[0] != "v1" || seg[1] != "sessions" || !(cdp_route || devtools_route))
    return refuse(error_response(req, http::status::not_found, "not_found",
                                 "no websocket route " + std::string(to_std(req.target()).substr(0, to_std(req.target()).find('?')))));
  auto live = sessions_.find_ready(seg[2]);
  if (!live) return refuse(error_response(req, live.error()));
  if (!may_use_session(req, *target, **live))
    return refuse(error_response(req, http::status::unauthorized, "unauthorized",
                                 "missing or invalid session token or API key"));
  std::string browser_path = cdp_route ? (*live)->browser_ws_path() : "/devtools/" + seg[4] + "/" + seg[5];
  for (char c : browser_path)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '-' || c == '_' || c == '.'))
      return refuse(error_response(req, http::status::bad_request, "bad_request", "invalid target id"));
  CdpProxy::start(*this, *live, std::move(stream), std::move(req), std::move(browser_path));
}

}  // namespace kindling::gateway
