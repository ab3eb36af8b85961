// A session's browser identity: what a standby Chromium is made to look like
// for one session (viewport, user agent, locale, timezone). Shared by the
// HTTP API (which validates what users send), the agent protocol (which
// validates what the host sends) and the agent (which applies it over CDP),
// so every boundary enforces the same rules. Header-only: the statically
// linked agent may include it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace kindling {

struct Viewport {
  int width = 0;
  int height = 0;
  bool operator==(const Viewport&) const = default;
};

struct BrowserIdentity {
  std::optional<Viewport> viewport;
  std::optional<std::string> user_agent;
  std::optional<std::string> locale;    // BCP 47, e.g. "de-DE"
  std::optional<std::string> timezone;  // IANA, e.g. "Europe/Berlin"

  bool empty() const { return !viewport && !user_agent && !locale && !timezone; }
  bool operator==(const BrowserIdentity&) const = default;
};

inline constexpr int kMinViewportSide = 100;
inline constexpr int kMaxViewportSide = 10000;
inline constexpr std::size_t kMaxUserAgentBytes = 1024;
inline constexpr std::size_t kMaxLocaleBytes = 35;
inline constexpr std::size_t kMaxTimezoneBytes = 64;

namespace browser_identity_detail {
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool all_of(std::string_view s, bool (*pred)(char)) {
  for (char c : s)
    if (!pred(c)) return false;
  return true;
}
}  // namespace browser_identity_detail

inline Status validate_viewport_side(long long v, std::string_view what) {
  if (v < kMinViewportSide || v > kMaxViewportSide)
    return make_error(std::string(what) + " must be an integer between " + std::to_string(kMinViewportSide) +
                          " and " + std::to_string(kMaxViewportSide),
                      "bad_request");
  return ok_status();
}

// Any printable text: it becomes an HTTP header value, so no control
// characters (CR/LF would split the header) and no DEL.
inline Status validate_user_agent(std::string_view ua) {
  if (ua.empty() || ua.size() > kMaxUserAgentBytes)
    return make_error("'userAgent' must be 1 to " + std::to_string(kMaxUserAgentBytes) + " characters",
                      "bad_request");
  for (unsigned char c : ua)
    if (c < 0x20 || c == 0x7f) return make_error("'userAgent' must not contain control characters", "bad_request");
  return ok_status();
}

// A strict subset of BCP 47 that Chromium's ICU and Accept-Language both
// understand: language (2-3 letters), optional script (4 letters), optional
// region (2 letters or 3 digits). "de", "de-DE", "zh-Hant-TW", "es-419".
inline Status validate_locale(std::string_view locale) {
  using namespace browser_identity_detail;
  auto bad = [] {
    return make_error("'locale' must be a BCP 47 tag like \"en-US\", \"de\" or \"zh-Hant-TW\"", "bad_request");
  };
  if (locale.empty() || locale.size() > kMaxLocaleBytes) return bad();
  std::string_view parts[4];
  std::size_t count = 0;
  while (true) {
    auto dash = locale.find('-');
    if (count == 3) return bad();
    parts[count++] = locale.substr(0, dash);
    if (dash == std::string_view::npos) break;
    locale.remove_prefix(dash + 1);
  }
  std::size_t i = 0;
  if (!(parts[i].size() == 2 || parts[i].size() == 3) || !all_of(parts[i], is_alpha)) return bad();
  ++i;
  if (i < count && parts[i].size() == 4 && all_of(parts[i], is_alpha)) ++i;
  if (i < count && ((parts[i].size() == 2 && all_of(parts[i], is_alpha)) ||
                    (parts[i].size() == 3 && all_of(parts[i], is_digit))))
    ++i;
  if (i != count) return bad();
  return ok_status();
}

// An IANA zone name's shape ("Europe/Berlin", "America/Argentina/Buenos_Aires",
// "UTC", "Etc/GMT+5"). Whether the zone exists is Chromium's call: the agent
// reports its refusal.
inline Status validate_timezone(std::string_view tz) {
  using namespace browser_identity_detail;
  auto bad = [] {
    return make_error("'timezone' must be an IANA time zone name like \"Europe/Berlin\"", "bad_request");
  };
  if (tz.empty() || tz.size() > kMaxTimezoneBytes) return bad();
  if (!is_alpha(tz.front()) || tz.back() == '/') return bad();
  char prev = 0;
  for (char c : tz) {
    if (!(is_alpha(c) || is_digit(c) || c == '/' || c == '_' || c == '-' || c == '+')) return bad();
    if (c == '/' && prev == '/') return bad();
    prev = c;
  }
  if (tz.find("..") != std::string_view::npos) return bad();
  return ok_status();
}

}  // namespace kindling
