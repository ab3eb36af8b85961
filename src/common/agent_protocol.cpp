#include "common/agent_protocol.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace kindling::agent_protocol {

namespace {

constexpr std::size_t kMaxStringBytes = 4096;
using nlohmann::json;

Result<std::string> get_string(const json& j, const char* key, bool required = true) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) return make_error(std::string("missing field '") + key + "'");
    return std::string();
  }
  if (!it->is_string()) return make_error(std::string("field '") + key + "' must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > kMaxStringBytes) return make_error(std::string("field '") + key + "' is too long");
  return s;
}

Result<double> get_number(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return 0.0;
  if (!it->is_number()) return make_error(std::string("field '") + key + "' must be a number");
  return it->get<double>();
}

Result<std::optional<int>> get_optional_int(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<int>();
  if (!it->is_number_integer()) return make_error(std::string("field '") + key + "' must be an integer");
  auto v = it->get<std::int64_t>();
  if (v < -1'000'000 || v > 1'000'000) return make_error(std::string("field '") + key + "' out of range");
  return std::optional<int>(static_cast<int>(v));
}

Result<std::uint64_t> get_id(const json& j) {
  auto it = j.find("id");
  if (it == j.end() || !it->is_number_unsigned()) return make_error("field 'id' must be an unsigned integer");
  return it->get<std::uint64_t>();
}

Result<std::optional<std::string>> get_optional_string(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::string>();
  KINDLING_TRY(s, get_string(j, key));
  return std::optional<std::string>(std::move(s));
}

Result<BrowserIdentity> parse_identity(const json& frame) {
  BrowserIdentity identity;
  if (auto it = frame.find("viewport"); it != frame.end() && !it->is_null()) {
    if (!it->is_object()) return make_error("apply_identity: 'viewport' must be an object");
    Viewport v;
    for (const char* side : {"width", "height"}) {
      auto n = it->find(side);
      if (n == it->end() || !n->is_number_integer())
        return make_error(std::string("apply_identity: 'viewport.") + side + "' must be an integer");
      auto value = n->get<std::int64_t>();
      if (auto st = validate_viewport_side(value, std::string("'viewport.") + side + "'"); !st) return st.error();
      (std::string_view(side) == "width" ? v.width : v.height) = static_cast<int>(value);
    }
    identity.viewport = v;
  }
  KINDLING_TRY(ua, get_optional_string(frame, "userAgent"));
  if (ua)
    if (auto st = validate_user_agent(*ua); !st) return st.error();
  KINDLING_TRY(locale, get_optional_string(frame, "locale"));
  if (locale)
    if (auto st = validate_locale(*locale); !st) return st.error();
  KINDLING_TRY(tz, get_optional_string(frame, "timezone"));
  if (tz)
    if (auto st = validate_timezone(*tz); !st) return st.error();
  identity.user_agent = std::move(ua);
  identity.locale = std::move(locale);
  identity.timezone = std::move(tz);
  if (identity.empty()) return make_error("apply_identity: nothing to apply");
  return identity;
}

}  // namespace

std::string encode_frame(const json& message) {
  std::string body = message.dump();
  std::uint32_t len = htonl(static_cast<std::uint32_t>(body.size()));
  std::string out(sizeof(len), '\0');
  std::memcpy(out.data(), &len, sizeof(len));
  out += body;
  return out;
}

Status FrameDecoder::feed(std::string_view bytes) {
  if (poisoned_) return make_error("frame stream already invalid");
  buffer_.append(bytes);
  if (buffer_.size() >= 4) {
    std::uint32_t len;
    std::memcpy(&len, buffer_.data(), 4);
    if (ntohl(len) > kMaxFrameBytes) {
      poisoned_ = true;
      buffer_.clear();
      return make_error("frame larger than " + std::to_string(kMaxFrameBytes) + " bytes");
    }
  }
  return ok_status();
}

std::optional<Result<json>> FrameDecoder::next() {
  if (poisoned_ || buffer_.size() < 4) return std::nullopt;
  std::uint32_t len;
  std::memcpy(&len, buffer_.data(), 4);
  len = ntohl(len);
  if (len > kMaxFrameBytes) {
    poisoned_ = true;
    return Result<json>(make_error("frame too large"));
  }
  if (buffer_.size() < 4 + static_cast<std::size_t>(len)) return std::nullopt;
  std::string_view body(buffer_.data() + 4, len);
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  buffer_.erase(0, 4 + static_cast<std::size_t>(len));
  // Any following frame header is checked now rather than after its body arrives.
  if (buffer_.size() >= 4) {
    std::uint32_t nlen;
    std::memcpy(&nlen, buffer_.data(), 4);
    if (ntohl(nlen) > kMaxFrameBytes) poisoned_ = true;
  }
  if (parsed.is_discarded()) return Result<json>(make_error("frame is not valid JSON"));
  if (!parsed.is_object()) return Result<json>(make_error("frame is not a JSON object"));
  return Result<json>(std::move(parsed));
}

Result<AgentMessage> parse_agent_message(const json& frame) {
  if (!frame.is_object()) return make_error("message must be a JSON object");
  KINDLING_TRY(type, get_string(frame, "type"));
  if (type == "hello") {
    auto it = frame.find("protocol");
    if (it == frame.end() || !it->is_number_integer()) return make_error("hello: 'protocol' must be an integer");
    Hello h;
    h.protocol = static_cast<int>(it->get<std::int64_t>());
    KINDLING_TRY(version, get_string(frame, "agentVersion", false));
    h.agent_version = version;
    return AgentMessage(h);
  }
  if (type == "ready") {
    auto b = frame.find("browser");
    if (b == frame.end() || !b->is_object()) return make_error("ready: 'browser' must be an object");
    Ready r;
    KINDLING_TRY(version, get_string(*b, "version"));
    KINDLING_TRY(proto, get_string(*b, "protocolVersion", false));
    KINDLING_TRY(ua, get_string(*b, "userAgent", false));
    KINDLING_TRY(path, get_string(*b, "webSocketPath"));
    if (path.rfind("/devtools/browser/", 0) != 0 || path.find_first_of("?# \r\n") != std::string::npos)
      return make_error("ready: 'webSocketPath' must be /devtools/browser/<id>");
    r.browser = {version, proto, ua, path};
    auto sb = frame.find("chromiumSandbox");
    if (sb == frame.end() || !sb->is_boolean()) return make_error("ready: 'chromiumSandbox' must be a boolean");
    r.chromium_sandbox = sb->get<bool>();
    KINDLING_TRY(note, get_string(frame, "sandboxNote", false));
    r.sandbox_note = note;
    auto t = frame.find("timings");
    if (t != frame.end()) {
      if (!t->is_object()) return make_error("ready: 'timings' must be an object");
      KINDLING_TRY(launch, get_number(*t, "launchMs"));
      KINDLING_TRY(cdp, get_number(*t, "cdpReadyMs"));
      r.launch_ms = launch;
      r.cdp_ready_ms = cdp;
    }
    return AgentMessage(r);
  }
  if (type == "browser_exited") {
    BrowserExited e;
    KINDLING_TRY(code, get_optional_int(frame, "exitCode"));
    KINDLING_TRY(sig, get_optional_int(frame, "signal"));
    KINDLING_TRY(reason, get_string(frame, "reason", false));
    e.exit_code = code;
    e.signal = sig;
    e.reason = reason;
    return AgentMessage(e);
  }
  if (type == "error") {
    KINDLING_TRY(message, get_string(frame, "message"));
    return AgentMessage(AgentError{message});
  }
  if (type == "pong") {
    KINDLING_TRY(id, get_id(frame));
    return AgentMessage(Pong{id});
  }
  if (type == "identity_applied") {
    IdentityApplied a;
    KINDLING_TRY(id, get_id(frame));
    a.id = id;
    auto ok = frame.find("ok");
    if (ok == frame.end() || !ok->is_boolean()) return make_error("identity_applied: 'ok' must be a boolean");
    a.ok = ok->get<bool>();
    KINDLING_TRY(error, get_string(frame, "error", false));
    if (!a.ok && error.empty()) return make_error("identity_applied: a failure must say why in 'error'");
    a.error = a.ok ? std::string() : error;
    return AgentMessage(a);
  }
  if (type == "proxy_set") {
    ProxySet a;
    KINDLING_TRY(id, get_id(frame));
    a.id = id;
    auto ok = frame.find("ok");
    if (ok == frame.end() || !ok->is_boolean()) return make_error("proxy_set: 'ok' must be a boolean");
    a.ok = ok->get<bool>();
    KINDLING_TRY(error, get_string(frame, "error", false));
    if (!a.ok && error.empty()) return make_error("proxy_set: a failure must say why in 'error'");
    a.error = a.ok ? std::string() : error;
    return AgentMessage(a);
  }
  if (type == "proxy_failed") {
    KINDLING_TRY(message, get_string(frame, "message"));
    return AgentMessage(ProxyFailed{message});
  }
  return make_error("unknown agent message type '" + type.substr(0, 64) + "'");
}

json to_json(const AgentMessage& message) {
  struct Visitor {
    json operator()(const Hello& h) const {
      return {{"type", "hello"}, {"protocol", h.protocol}, {"agentVersion", h.agent_version}};
    }
    json operator()(const Ready& r) const {
      return {{"type", "ready"},
              {"browser",
               {{"version", r.browser.version},
                {"protocolVersion", r.browser.protocol_version},
                {"userAgent", r.browser.user_agent},
                {"webSocketPath", r.browser.websocket_path}}},
              {"chromiumSandbox", r.chromium_sandbox},
              {"sandboxNote", r.sandbox_note},
              {"timings", {{"launchMs", r.launch_ms}, {"cdpReadyMs", r.cdp_ready_ms}}}};
    }
    json operator()(const BrowserExited& e) const {
      json j = {{"type", "browser_exited"}, {"reason", e.reason}};
      j["exitCode"] = e.exit_code ? json(*e.exit_code) : json(nullptr);
      j["signal"] = e.signal ? json(*e.signal) : json(nullptr);
      return j;
    }
    json operator()(const AgentError& e) const { return {{"type", "error"}, {"message", e.message}}; }
    json operator()(const Pong& p) const { return {{"type", "pong"}, {"id", p.id}}; }
    json operator()(const IdentityApplied& a) const {
      json j = {{"type", "identity_applied"}, {"id", a.id}, {"ok", a.ok}};
      if (!a.ok) j["error"] = a.error;
      return j;
    }
    json operator()(const ProxySet& a) const {
      json j = {{"type", "proxy_set"}, {"id", a.id}, {"ok", a.ok}};
      if (!a.ok) j["error"] = a.error;
      return j;
    }
    json operator()(const ProxyFailed& f) const { return {{"type", "proxy_failed"}, {"message", f.message}}; }
  };
  return std::visit(Visitor{}, message);
}

Result<HostMessage> parse_host_message(const json& frame) {
  if (!frame.is_object()) return make_error("message must be a JSON object");
  KINDLING_TRY(type, get_string(frame, "type"));
  if (type == "ping") {
    KINDLING_TRY(id, get_id(frame));
    return HostMessage(Ping{id});
  }
  if (type == "shutdown") return HostMessage(Shutdown{});
  if (type == "close_browser") return HostMessage(CloseBrowser{});
  if (type == "apply_identity") {
    KINDLING_TRY(id, get_id(frame));
    KINDLING_TRY(identity, parse_identity(frame));
    return HostMessage(ApplyIdentity{id, std::move(identity)});
  }
  if (type == "set_proxy") {
    KINDLING_TRY(id, get_id(frame));
    auto it = frame.find("proxy");
    if (it == frame.end()) return make_error("set_proxy: 'proxy' is required");
    auto proxy = parse_upstream_proxy(*it, "set_proxy.proxy");
    if (!proxy) return proxy.error();
    return HostMessage(SetProxy{id, std::move(proxy.value())});
  }
  return make_error("unknown host message type '" + type.substr(0, 64) + "'");
}

json to_json(const HostMessage& message) {
  struct Visitor {
    json operator()(const Ping& p) const { return {{"type", "ping"}, {"id", p.id}}; }
    json operator()(const Shutdown&) const { return {{"type", "shutdown"}}; }
    json operator()(const CloseBrowser&) const { return {{"type", "close_browser"}}; }
    json operator()(const ApplyIdentity& a) const {
      json j = {{"type", "apply_identity"}, {"id", a.id}};
      const BrowserIdentity& i = a.identity;
      if (i.viewport) j["viewport"] = {{"width", i.viewport->width}, {"height", i.viewport->height}};
      if (i.user_agent) j["userAgent"] = *i.user_agent;
      if (i.locale) j["locale"] = *i.locale;
      if (i.timezone) j["timezone"] = *i.timezone;
      return j;
    }
    json operator()(const SetProxy& s) const {
      return {{"type", "set_proxy"}, {"id", s.id}, {"proxy", to_protocol_json(s.proxy)}};
    }
  };
  return std::visit(Visitor{}, message);
}

Result<ConnectionKind> parse_preamble(std::string_view line) {
  if (line.size() > kMaxPreambleBytes) return make_error("preamble too long");
  if (line == kControlPreamble) return ConnectionKind::kControl;
  if (line == kCdpPreamble) return ConnectionKind::kCdp;
  return make_error("unknown preamble");
}

}  // namespace kindling::agent_protocol
