#include "cli/profile_commands.hpp"

#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/api_client.hpp"

namespace kindling::cli {

void add_profile_commands(CLI::App& app, std::shared_ptr<int> exit_code) {
  auto opts = std::make_shared<ClientOptions>();
  if (const char* env = std::getenv("KINDLING_URL"); env && *env) opts->server = env;
  auto* profile = app.add_subcommand("profile", "Create, list and delete saved browser profiles");
  profile->require_subcommand(1);
  profile->add_option("--server", opts->server, "Server URL (env KINDLING_URL)")->capture_default_str();
  profile->add_option("--api-key", opts->api_key, "API key (env KINDLING_API_KEY, else <data-dir>/api-key)");
  profile->add_option("--data-dir", opts->data_dir, "Where to find the api-key file (env KINDLING_DATA_DIR)");

  auto arg = std::make_shared<std::string>();
  auto* create = profile->add_subcommand("create", "Make an empty profile; prints it with its id");
  create->fallthrough();
  create->add_option("--name", *arg, "A label for it");
  create->callback([opts, arg, exit_code] {
    ApiClient client(opts->server, resolve_api_key(*opts));
    *exit_code = report_response(client.call("POST", "/v1/profiles", nlohmann::json{{"name", *arg}}.dump()));
  });

  auto* list = profile->add_subcommand("list", "List profiles");
  list->fallthrough();
  list->callback([opts, exit_code] {
    ApiClient client(opts->server, resolve_api_key(*opts));
    *exit_code = report_response(client.call("GET", "/v1/profiles"));
  });

  auto* get = profile->add_subcommand("get", "Show one profile");
  get->fallthrough();
  get->add_option("id", *arg, "Profile id")->required();
  get->callback([opts, arg, exit_code] {
    ApiClient client(opts->server, resolve_api_key(*opts));
    *exit_code = report_response(client.call("GET", "/v1/profiles/" + *arg));
  });

  auto* del = profile->add_subcommand("delete", "Delete a profile (refused while a session uses it)");
  del->fallthrough();
  del->add_option("id", *arg, "Profile id")->required();
  del->callback([opts, arg, exit_code] {
    ApiClient client(opts->server, resolve_api_key(*opts));
    *exit_code = report_response(client.call("DELETE", "/v1/profiles/" + *arg));
  });
}

}  // namespace kindling::cli
