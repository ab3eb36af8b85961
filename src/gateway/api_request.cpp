#include "gateway/api_request.hpp"


#include <set>
#include <vector>

#include "common/upstream_proxy.hpp"

#include <nlohmann/json.hpp>

namespace kindling::gateway {

namespace {

constexpr std::size_t kMaxTargetBytes = 4096;
constexpr std::size_t kMaxSegments = 16;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return make_error("bad percent-encoding", "bad_request");
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return make_error("bad percent-encoding", "bad_request");
      char decoded = static_cast<char>(hi * 16 + lo);
      if (decoded == '\0') return make_error("NUL in request target", "bad_request");
      out.push_back(decoded);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

Result<Target> parse_target(std::string_view target) {
  if (target.empty() || target.front() != '/') return make_error("request target must start with '/'", "bad_request");
  if (target.size() > kMaxTargetBytes) return make_error("request target too long", "bad_request");
  Target t;
  std::string_view path = target, query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  if (auto f = query.find('#'); f != std::string_view::npos) query = query.substr(0, f);
  t.trailing_slash = path.size() > 1 && path.back() == '/';
  std::size_t pos = 1;
  while (pos < path.size()) {
    auto next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    auto raw = path.substr(pos, next - pos);
    if (!raw.empty()) {
      KINDLING_TRY(seg, percent_decode(raw, false));
      if (seg == "." || seg == ".." || seg.find('/') != std::string::npos)
        return make_error("path segment not allowed", "bad_request");
      t.segments.push_back(std::move(seg));
      if (t.segments.size() > kMaxSegments) return make_error("too many path segments", "bad_request");
    }
    pos = next + 1;
  }
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    KINDLING_TRY(key, percent_decode(pair.substr(0, eq), true));
    std::string value;
    if (eq != std::string_view::npos) {
      KINDLING_TRY(v, percent_decode(pair.substr(eq + 1), true));
      value = std::move(v);
    }
    t.query.emplace(std::move(key), std::move(value));
  }
  return t;
}

namespace {

// JSON allows a key twice and nlohmann keeps the last; a proxy or a check in
// front of us may have read the first. Refuse the ambiguity instead.
Result<nlohmann::json> parse_json_without_duplicate_keys(std::string_view body) {
  using Event = nlohmann::json::parse_event_t;
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto j = nlohmann::json::parse(
      body,
      [&](int, Event event, nlohmann::json& parsed) {
        if (event == Event::object_start) {
          open_objects.emplace_back();
        } else if (event == Event::object_end) {
          if (!open_objects.empty()) open_objects.pop_back();
        } else if (event == Event::key && !open_objects.empty()) {
          if (!open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty())
            duplicate = parsed.get<std::string>();
        }
        return true;
      },
      /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error("request body is not valid JSON", "bad_request");
  if (!duplicate.empty())
    return make_error("request body has the key '" + duplicate.substr(0, 64) + "' twice", "bad_request");
  return j;
}

// "extensions": ["<id>", ...]: ids as the extension store makes them; the
// gateway then checks that each exists.
Result<std::vector<node::MachineExtension>> parse_extension_ids(const nlohmann::json& value) {
  if (!value.is_array()) return make_error("'extensions' must be an array of extension ids", "bad_request");
  if (value.size() > node::kMaxMachineExtensions)
    return make_error("'extensions' may list at most " + std::to_string(node::kMaxMachineExtensions) + " extensions",
                      "bad_request");
  std::vector<node::MachineExtension> out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const auto& v = value[i];
    const std::string field = "'extensions[" + std::to_string(i) + "]'";
    if (!v.is_string()) return make_error(field + " must be a string (an extension id)", "bad_request");
    const auto& id = v.get_ref<const std::string&>();
    if (id.empty() || id.size() > 64 ||
        id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") != std::string::npos)
      return make_error(field + " is not an extension id: '" + id.substr(0, 64) + "'", "bad_request");
    for (const auto& seen : out)
      if (seen.name == id) return make_error(field + " lists extension '" + id + "' twice", "bad_request");
    out.push_back({.name = id, .host_dir = {}});
  }
  return out;
}

// "profile": {"id": "<id>", "persist": true|false}; the gateway then checks
// that it exists.
Result<control::SessionProfile> parse_session_profile(const nlohmann::json& value) {
  if (!value.is_object())
    return make_error("'profile' must be an object {\"id\": \"<profile id>\", \"persist\": true|false}",
                      "bad_request");
  control::SessionProfile p;
  bool have_id = false;
  for (auto& [field, v] : value.items()) {
    if (field == "id") {
      if (!v.is_string()) return make_error("'profile.id' must be a string (a profile id)", "bad_request");
      p.id = v.get<std::string>();
      // What the profile store makes: 24 lowercase hex digits.
      if (p.id.size() != 24 || p.id.find_first_not_of("0123456789abcdef") != std::string::npos)
        return make_error("'profile.id' is not a profile id: '" + p.id.substr(0, 64) + "'", "bad_request");
      have_id = true;
    } else if (field == "persist") {
      if (!v.is_boolean()) return make_error("'profile.persist' must be true or false", "bad_request");
      p.persist = v.get<bool>();
    } else {
      return make_error("unknown field 'profile." + field.substr(0, 64) + "'", "bad_request");
    }
  }
  if (!have_id) return make_error("'profile' needs an 'id'", "bad_request");
  return p;
}

}  // namespace

Result<control::CreateSessionOptions> parse_create_session(std::string_view body,
                                                           const control::SessionLimits& limits) {
  control::CreateSessionOptions opts;
  auto all_space = body.find_first_not_of(" \t\r\n") == std::string_view::npos;
  if (all_space) return opts;
  KINDLING_TRY(j, parse_json_without_duplicate_keys(body));
  if (!j.is_object()) return make_error("request body must be a JSON object", "bad_request");
  auto read_seconds = [&](const std::string& key, int max, int& out) -> Status {
    const auto& v = j[key];
    if (!v.is_number_integer())
      return make_error("'" + key + "' must be an integer number of seconds", "bad_request");
    auto n = v.get<std::int64_t>();
    if (n < 1 || n > max)
      return make_error("'" + key + "' must be between 1 and " + std::to_string(max), "bad_request");
    out = static_cast<int>(n);
    return ok_status();
  };
  for (auto& [key, value] : j.items()) {
    if (key == "timeoutSeconds") {
      if (auto st = read_seconds(key, limits.max_timeout_seconds, opts.timeout_seconds); !st) return st.error();
    } else if (key == "idleTimeoutSeconds") {
      if (auto st = read_seconds(key, limits.max_timeout_seconds, opts.idle_timeout_seconds); !st) return st.error();
    } else if (key == "viewport") {
      if (!value.is_object()) return make_error("'viewport' must be an object {width, height}", "bad_request");
      Viewport v;
      for (auto& [side, n] : value.items()) {
        if (side != "width" && side != "height")
          return make_error("unknown field 'viewport." + side.substr(0, 64) + "'", "bad_request");
        if (!n.is_number_integer())
          return make_error("'viewport." + side + "' must be an integer between " + std::to_string(kMinViewportSide) +
                                " and " + std::to_string(kMaxViewportSide),
                            "bad_request");
        if (auto st = validate_viewport_side(n.get<std::int64_t>(), "'viewport." + side + "'"); !st) return st.error();
        (side == "width" ? v.width : v.height) = static_cast<int>(n.get<std::int64_t>());
      }
      if (!value.contains("width") || !value.contains("height"))
        return make_error("'viewport' needs both 'width' and 'height'", "bad_request");
      opts.identity.viewport = v;
    } else if (key == "userAgent" || key == "locale" || key == "timezone") {
      if (!value.is_string()) return make_error("'" + key + "' must be a string", "bad_request");
      const auto& text = value.get_ref<const std::string&>();
      Status valid = key == "userAgent" ? validate_user_agent(text)
                     : key == "locale"  ? validate_locale(text)
                                        : validate_timezone(text);
      if (!valid) return valid.error();
      (key == "userAgent" ? opts.identity.user_agent : key == "locale" ? opts.identity.locale : opts.identity.timezone) =
          text;
    } else if (key == "profile") {
      if (value.is_null()) continue;  // explicitly none
      auto profile = parse_session_profile(value);
      if (!profile) return profile.error();
      opts.profile = std::move(profile.value());
    } else if (key == "extensions") {
      auto ids = parse_extension_ids(value);
      if (!ids) return ids.error();
      opts.extensions = std::move(ids.value());
    } else if (key == "proxy") {
      if (value.is_null()) continue;  // explicitly none
      auto proxy = parse_upstream_proxy(value, "proxy");
      if (!proxy) return proxy.error();
      opts.proxy = std::move(proxy.value());
    } else {
      return make_error("unknown field '" + key.substr(0, 64) + "'", "bad_request");
    }
  }
  return opts;
}

std::optional<std::string> sanitize_host_header(std::string_view host) {
  if (host.empty() || host.size() > 255) return std::nullopt;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == ':' || c == '[' || c == ']' || c == '_';
    if (!ok) return std::nullopt;
  }
  return std::string(host);
}

}  // namespace kindling::gateway
