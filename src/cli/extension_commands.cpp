#include "cli/extension_commands.hpp"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "cli/api_client.hpp"

namespace kindling::cli {

namespace {

// The server refuses more (413); reading past it would only waste memory.
constexpr std::size_t kMaxZipBytes = 32u << 20;

}  // namespace

void add_extension_commands(CLI::App& app, std::shared_ptr<int> exit_code) {
  auto opts = std::make_shared<ClientOptions>();
  if (const char* env = std::getenv("KINDLING_URL"); env && *env) opts->server = env;
  auto* ext = app.add_subcommand("extension", "Upload, list and delete Chrome extensions sessions can load");
  ext->require_subcommand(1);
  ext->add_option("--server", opts->server, "Server URL (env KINDLING_URL)")->capture_default_str();
  ext->add_option("--api-key", opts->api_key, "API key (env KINDLING_API_KEY, else <data-dir>/api-key)");
  ext->add_option("--data-dir", opts->data_dir, "Where to find the api-key file (env KINDLING_DATA_DIR)");

  auto arg = std::make_shared<std::string>();
  auto* upload = ext->add_subcommand("upload", "Upload an unpacked extension as a zip (manifest.json at its root "
                                               "or in one top-level folder); prints its id");
  upload->fallthrough();
  upload->add_option("zip", *arg, "The zip file")->required();
  upload->callback([opts, arg, exit_code] {
    std::ifstream in(*arg, std::ios::binary);
    if (!in) {
      std::cerr << "error: cannot read " << *arg << "\n";
      *exit_code = 2;
      return;
    }
    std::string zip;
    zip.resize(kMaxZipBytes + 1);
    in.read(zip.data(), static_cast<std::streamsize>(zip.size()));
    zip.resize(static_cast<std::size_t>(in.gcount()));
    if (zip.size() > kMaxZipBytes || zip.empty()) {
      std::cerr << "error: " << *arg << " is " << (zip.empty() ? "empty" : "larger than 32 MiB, the server's limit")
                << "\n";
      *exit_code = 2;
      return;
    }
    ApiClient client(opts->server, resolve_api_key(*opts));
    *exit_code = report_response(client.call("POST", "/v1/extensions", zip, "application/zip"));
  });

  auto* list = ext->add_subcommand("list", "List uploaded extensions");
  list->fallthrough();
  list->callback([opts, exit_code] {
    ApiClient client(opts->server, resolve_api_key(*opts));
    *exit_code = report_response(client.call("GET", "/v1/extensions"));
  });

  auto* get = ext->add_subcommand("get", "Show one extension");
  get->fallthrough();
  get->add_option("id", *arg, "Extension id")->required();
  get->callback([opts, arg, exit_code] {
    ApiClient client(opts->server, resolve_api_key(*opts));
    *exit_code = report_response(client.call("GET", "/v1/extensions/" + *arg));
  });

  auto* del = ext->add_subcommand("delete", "Delete an extension (refused while a session uses it)");
  del->fallthrough();
  del->add_option("id", *arg, "Extension id")->required();
  del->callback([opts, arg, exit_code] {
    ApiClient client(opts->server, resolve_api_key(*opts));
    *exit_code = report_response(client.call("DELETE", "/v1/extensions/" + *arg));
  });
}

}  // namespace kindling::cli
