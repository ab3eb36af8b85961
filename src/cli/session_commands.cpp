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
    std::vector<std::string> extensions;
    std::string profile;
    bool persist = false;
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
  create->add_option("--extension", flags->extensions,
                     "Id of an uploaded extension to load (repeatable; `kindling extension upload`)")
      ->allow_extra_args(false);
  create->add_option("--profile", flags->profile, "Id of a saved profile to start with (`kindling profile create`)");
  create->add_flag("--persist", flags->persist, "Save the session's browser state back into --profile when it ends");
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
    if (!flags->extensions.empty()) body["extensions"] = flags->extensions;
    if (flags->persist && flags->profile.empty()) {
      std::cerr << "error: --persist needs --profile\n";
      *exit_code = 2;
      return;
    }
    if (!flags->profile.empty()) body["profile"] = {{"id", flags->profile}, {"persist", flags->persist}};
    ApiClient client(opts->server, resolve_api_key(*opts));
    *exit_code = report_response(client.call("POST", "/v1/sessions", body.dump()));
  });

  auto all = std::make_shared<bool>(false);
  auto* list = session->add_subcommand("list", "List live sessions");
  list->fallthrough();
  list->add_flag("--all", *all, "Include ended sessions");
  list->callback([opts, all, exit_code] {
    ApiClient client(opts->server, resolve_api_key(*opts));
    *exit_code = report_response(client.call("GET", *all ? "/v1/sessions?all=1" : "/v1/sessions"));
  });

  auto id = std::make_shared<std::string>();
  auto* get = session->add_subcommand("get", "Show one session");
  get->fallthrough();
  get->add_option("id", *id, "Session id")->required();
  get->callback([opts, id, exit_code] {
    ApiClient client(opts->server, resolve_api_key(*opts));
    *exit_code = report_response(client.call("GET", "/v1/sessions/" + *id));
  });

  auto* del = session->add_subcommand("delete", "Release a session: its browser and machine are destroyed");
  del->alias("release");
  del->fallthrough();
  del->add_option("id", *id, "Session id")->required();
  del->callback([opts, id, exit_code] {
    ApiClient client(opts->server, resolve_api_key(*opts));
    *exit_code = report_response(client.call("DELETE", "/v1/sessions/" + *id));
  });
}

}  // namespace kindling::cli
