#include "cli/session_commands.hpp"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>

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

  auto timeout = std::make_shared<int>(0);
  auto idle = std::make_shared<int>(0);
  auto* create = session->add_subcommand("create", "Start a browser session and print it (with its cdpUrl)");
  create->fallthrough();  // --server and friends may follow the subcommand
  create->add_option("--timeout", *timeout, "Max lifetime in seconds")->check(CLI::Range(1, 86400));
  create->add_option("--idle-timeout", *idle, "Seconds without a CDP client before it ends")->check(CLI::Range(1, 86400));
  create->callback([opts, timeout, idle, exit_code] {
    nlohmann::json body = nlohmann::json::object();
    if (*timeout) body["timeoutSeconds"] = *timeout;
    if (*idle) body["idleTimeoutSeconds"] = *idle;
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
