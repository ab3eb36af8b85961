// /v1/extensions: uploaded Chrome extensions (docs/api.md, "Extensions").
#include <cctype>

#include "common/log.hpp"
#include "gateway/gateway.hpp"

namespace kindling::gateway {

namespace {

// application/zip, or what some clients send for it; parameters ignored.
bool is_zip_content_type(std::string_view type) {
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  std::string lower;
  for (char c : type) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return lower == "application/zip" || lower == "application/x-zip-compressed" ||
         lower == "application/octet-stream";
}

}  // namespace

Status Gateway::resolve_extensions(control::CreateSessionOptions& options) const {
  if (options.extensions.empty()) return ok_status();
  if (!extensions_) return make_error("this server does not store extensions", "bad_request");
  for (auto& e : options.extensions) {
    auto found = extensions_->get(e.name);
    if (!found) {
      if (found.error().code == "not_found")
        return make_error("unknown extension '" + e.name + "' in 'extensions' (upload it with POST /v1/extensions)",
                          "bad_request");
      return found.error();
    }
    e.host_dir = extensions_->files_dir(e.name);
  }
  return ok_status();
}

void Gateway::handle_extensions(const Request& req, const std::vector<std::string>& seg,
                                std::function<void(Response)> reply) {
  const auto method = req.method();
  if (!extensions_) return reply(error_response(req, http::status::not_found, "not_found", "no such route"));
  if (seg.size() == 2) {
    if (method == http::verb::get) {
      auto list = extensions_->list();
      if (!list) return reply(error_response(req, list.error()));
      auto arr = nlohmann::json::array();
      for (const auto& e : *list) arr.push_back(control::to_api_json(e));
      return reply(json_response(req, http::status::ok, {{"extensions", arr}}));
    }
    if (method == http::verb::post) {
      if (!is_zip_content_type(to_std(req[http::field::content_type])))
        return reply(error_response(req, http::status::bad_request, "bad_request",
                                    "send the extension as a zip with Content-Type: application/zip"));
      auto added = extensions_->add(req.body());
      if (!added) return reply(error_response(req, added.error()));
      spdlog::info("extension {}: uploaded '{}' {} ({} files, {} bytes)", added->id, added->name, added->version,
                   added->file_count, added->size_bytes);
      return reply(json_response(req, http::status::created, control::to_api_json(*added)));
    }
  } else if (seg.size() == 3) {
    const std::string& id = seg[2];
    if (method == http::verb::get) {
      auto found = extensions_->get(id);
      if (!found) return reply(error_response(req, found.error()));
      return reply(json_response(req, http::status::ok, control::to_api_json(*found)));
    }
    if (method == http::verb::delete_) {
      auto found = extensions_->get(id);
      if (!found) return reply(error_response(req, found.error()));
      // A machine that loaded it shows its files until it is reaped.
      if (auto user = sessions_.session_using_extension(id))
        return reply(error_response(req, http::status::conflict, "conflict",
                                    "extension '" + id + "' is in use by session " + *user +
                                        "; delete it once that session has ended"));
      if (auto st = extensions_->remove(id); !st) return reply(error_response(req, st.error()));
      spdlog::info("extension {}: deleted", id);
      return reply(json_response(req, http::status::ok, control::to_api_json(*found)));
    }
  } else {
    return reply(error_response(req, http::status::not_found, "not_found", "no such route"));
  }
  reply(error_response(req, http::status::method_not_allowed, "method_not_allowed",
                       std::string(req.method_string()) + " is not allowed here: GET and POST /v1/extensions, "
                                                          "GET and DELETE /v1/extensions/{id}"));
}

}  // namespace kindling::gateway
