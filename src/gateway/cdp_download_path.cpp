#include "gateway/cdp_download_path.hpp"

#include <nlohmann/json.hpp>

namespace kindling::gateway {

std::optional<std::string> rewrite_download_behavior(std::string_view message, const std::string& downloads_dir) {
  // Most messages are not this one; skip parsing them.
  if (message.find("setDownloadBehavior") == std::string_view::npos) return std::nullopt;
  auto call = nlohmann::json::parse(message, nullptr, /*allow_exceptions=*/false);
  if (!call.is_object()) return std::nullopt;
  auto method = call.find("method");
  if (method == call.end() || !method->is_string()) return std::nullopt;
  const auto& name = method->get_ref<const std::string&>();
  if (name != "Browser.setDownloadBehavior" && name != "Page.setDownloadBehavior") return std::nullopt;
  auto params = call.find("params");
  if (params == call.end() || !params->is_object()) return std::nullopt;
  auto behavior = params->find("behavior");
  if (behavior == params->end() || !behavior->is_string()) return std::nullopt;
  const auto& b = behavior->get_ref<const std::string&>();
  if (b != "allow" && b != "allowAndName") return std::nullopt;
  auto path = params->find("downloadPath");
  if (b == "allow" && path != params->end() && path->is_string() && *path == downloads_dir) return std::nullopt;
  (*params)["behavior"] = "allow";
  (*params)["downloadPath"] = downloads_dir;
  return call.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace kindling::gateway
