// /v1/profiles: saved browser profiles (docs/api.md, "Profiles";
// docs/profiles.md).
#include "common/log.hpp"
#include "gateway/gateway.hpp"

namespace kindling::gateway {

void Gateway::handle_profiles(const Request& req, const std::vector<std::string>& seg,
                              std::function<void(Response)> reply) {
  const auto method = req.method();
  if (!profiles_) return reply(error_response(req, http::status::not_found, "not_found", "no such route"));
  if (seg.size() == 2) {
    if (method == http::verb::get) {
      auto list = profiles_->list();
      if (!list) return reply(error_response(req, list.error()));
      auto arr = nlohmann::json::array();
      for (const auto& p : *list) {
        auto j = control::to_api_json(p);
        auto user = sessions_.session_using_profile(p.id, false);
        j["inUseBy"] = user ? nlohmann::json(*user) : nlohmann::json(nullptr);
        arr.push_back(std::move(j));
      }
      return reply(json_response(req, http::status::ok, {{"profiles", arr}}));
    }
    if (method == http::verb::post) {
      // The body is optional: {} or {"name": "..."}.
      std::string name;
      const auto& body = req.body();
      if (body.find_first_not_of(" \t\r\n") != std::string::npos) {
        auto j = nlohmann::json::parse(body, nullptr, false);
        if (!j.is_object())
          return reply(error_response(req, http::status::bad_request, "bad_request",
                                      "request body must be a JSON object: {} or {\"name\": \"...\"}"));
        for (auto& [key, value] : j.items()) {
          if (key != "name")
            return reply(error_response(req, http::status::bad_request, "bad_request",
                                        "unknown field '" + key.substr(0, 64) + "'"));
          if (!value.is_string())
            return reply(error_response(req, http::status::bad_request, "bad_request", "'name' must be a string"));
          name = value.get<std::string>();
        }
      }
      auto created = profiles_->create(name);
      if (!created) return reply(error_response(req, created.error()));
      spdlog::info("profile {}: created{}", created->id, created->encrypted ? " (encrypted)" : "");
      return reply(json_response(req, http::status::created, control::to_api_json(*created)));
    }
  } else if (seg.size() == 3) {
    const std::string& id = seg[2];
    if (!control::ProfileStore::valid_id(id))
      return reply(error_response(req, http::status::not_found, "not_found",
                                  "no profile with id '" + id.substr(0, 64) + "' (ids are 24 hex digits)"));
    if (method == http::verb::get) {
      auto found = profiles_->get(id);
      if (!found) return reply(error_response(req, found.error()));
      auto j = control::to_api_json(*found);
      auto user = sessions_.session_using_profile(id, false);
      j["inUseBy"] = user ? nlohmann::json(*user) : nlohmann::json(nullptr);
      return reply(json_response(req, http::status::ok, j));
    }
    if (method == http::verb::delete_) {
      auto found = profiles_->get(id);
      if (!found) return reply(error_response(req, found.error()));
      if (auto user = sessions_.session_using_profile(id, false))
        return reply(error_response(req, http::status::conflict, "conflict",
                                    "profile '" + id + "' is in use by session " + *user +
                                        "; delete it once that session has ended (and saved)"));
      if (auto st = profiles_->remove(id); !st) return reply(error_response(req, st.error()));
      spdlog::info("profile {}: deleted", id);
      return reply(json_response(req, http::status::ok, control::to_api_json(*found)));
    }
  } else {
    return reply(error_response(req, http::status::not_found, "not_found", "no such route"));
  }
  reply(error_response(req, http::status::method_not_allowed, "method_not_allowed",
                       std::string(req.method_string()) + " is not allowed here: GET and POST /v1/profiles, "
                                                          "GET and DELETE /v1/profiles/{id}"));
}

}  // namespace kindling::gateway
