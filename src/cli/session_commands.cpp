#include "cli/session_commands.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/api_client.hpp"

namespace kindling::cli {

namespace {

struct ClientOptions {
  std::string server = "http://127.0.0.1:8600";
  std::string api_key;
  std::string data_dir;
};

std::string resolve_key(const ClientOptions& o) {
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

// Prints the answer; a non-2xx status makes the command fail with its error.
int report(const Result<ApiResponse>& r) {
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

}  // namespace

void add_session_commands(CLI::App& app, std::shared_ptr<int> exit_code) {
  auto opts = std::make_shared<ClientOptions>();
  if (const char* env = std::getenv("KINDLING_URL"); env && *env) opts->server = env;
  auto* session = app.add_subcommand("session", "Create, inspect and release sessions on a running server");
  session->require_subcommand(1);
  session->add_option("--server", opts->server, "Server URL (env KINDLING_URL)")->capture_default_str();
  session->add_option("--api-key", opts->api_key, "API key (env KINDLING_API_KEY, else <data-dir>/api-key)");
  session->add_option("--data-dir", opts->data_dir, "Where to find the api-key file (env KINDLING_DATA_DIR)");

  struct CreateFlags {
    int timeout = 0, idle = 0;
    std::string viewport, user_agent, locale, timezone, proxy, proxy_username;
    std::vector<std::string> proxy_bypass;
  };
  auto flags = std::make_shared<CreateFlags>();
  auto* create = session->add_subcommand("create", "Start a browser session and print it (with its cdpUrl)");
  create->fallthrough();  // --server and friends may follow the subcommand
  create->add_option("--timeout", flags->timeout, "Max lifetime in seconds")->check(CLI::Range(1, 86400));
  create->add_option("--idle-timeout", flags->idle, "Seconds without a CDP client before it ends")
      ->check(CLI::Range(1, 86400));
  create->add_option("--viewport", flags->viewport, "Window and viewport size, WIDTHxHEIGHT (e.g. 1280x720)");
  create->add_option("--user-agent", flags->user_agent, "User-Agent for every page");
  create->add_option("--locale", flags->locale, "Locale and Accept-Language (e.g. de-DE)");
  create->add_option("--timezone", flags->timezone, "IANA time zone (e.g. Europe/Berlin)");
  create->add_option("--proxy", flags->proxy, "Upstream proxy, http://HOST:PORT or socks5://HOST:PORT");
  create->add_option("--proxy-username", flags->proxy_username,
                     "Proxy user; the password comes from env KINDLING_PROXY_PASSWORD, never the command line");
  create->add_option("--proxy-bypass", flags->proxy_bypass, "Host pattern that skips the proxy (repeatable)")
      ->allow_extra_args(false);
  create->callback([opts, flags, exit_code] {
    nlohmann::json body = nlohmann::json::object();
    if (flags->timeout) body["timeoutSeconds"] = flags->timeout;
    if (flags->idle) body["idleTimeoutSeconds"] = flags->idle;
    if (!flags->viewport.empty()) {
      // The server validates the numbers; here only the shape.
      unsigned width = 0, height = 0;
      char x = 0, rest = 0;
      if (std::sscanf(flags->viewport.c_str(), "%u%c%u%c", &width, &x, &height, &rest) != 3 || (x != 'x' && x != 'X')) {
        std::cerr << "error: --viewport must be WIDTHxHEIGHT, e.g. 1280x720\n";
        *exit_code = 2;
        return;
      }
      body["viewport"] = {{"width", width}, {"height", height}};
    }
    if (!flags->user_agent.empty()) body["userAgent"] = flags->user_agent;
    if (!flags->locale.empty()) body["locale"] = flags->locale;
    if (!flags->timezone.empty()) body["timezone"] = flags->timezone;
    if (!flags->proxy.empty()) {
      nlohmann::json proxy = {{"server", flags->proxy}};
      if (!flags->proxy_username.empty()) {
        const char* password = std::getenv("KINDLING_PROXY_PASSWORD");
        proxy["username"] = flags->proxy_username;
        proxy["password"] = password ? password : "";
      }
      if (!flags->proxy_bypass.empty()) proxy["bypass"] = flags->proxy_bypass;
      body["proxy"] = std::move(proxy);
    } else if (!flags->proxy_username.empty() || !flags->proxy_bypass.empty()) {
      std::cerr << "error: --proxy-username and --proxy-bypass need --proxy\n";
      *exit_code = 2;
      return;
    }
    ApiClient client(opts->server, resolve_key(*opts));
    *exit_code = report(client.call("POST", "/v1/sessions", body.dump()));
  });

  auto all = std::make_shared<bool>(false);
  auto* list = session->add_subcommand("list", "List live sessions");
  list->fallthrough();
  list->add_flag("--all", *all, "Include ended sessions");
  list->callback([opts, all, exit_code] {
    ApiClient client(opts->server, resolve_key(*opts));
    *exit_code = report(client.call("GET", *all ? "/v1/sessions?all=1" : "/v1/sessions"));
  });

  auto id = std::make_shared<std::string>();
  auto* get = session->add_subcommand("get", "Show one session");
  get->fallthrough();
  get->add_option("id", *id, "Session id")->required();
  get->callback([opts, id, exit_code] {
    ApiClient client(opts->server, resolve_key(*opts));
    *exit_code = report(client.call("GET", "/v1/sessions/" + *id));
  });

  auto* del = session->add_subcommand("delete", "Release a session: its browser and machine are destroyed");
  del->alias("release");
  del->fallthrough();
  del->add_option("id", *id, "Session id")->required();
  del->callback([opts, id, exit_code] {
    ApiClient client(opts->server, resolve_key(*opts));
    *exit_code = report(client.call("DELETE", "/v1/sessions/" + *id));
  });
}

}  // namespace kindling::cli
