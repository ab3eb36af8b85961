// CDP HTTP discovery (/json/version, /json/list, ...) answered by the
// session's Chromium, with every debugger URL rewritten to point back through
// the gateway, so clients that discover their websocket URL work unchanged.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "control/session_manager.hpp"
#include "gateway/http_response.hpp"

namespace kindling::gateway {

class Gateway;

void serve_discovery(Gateway& gateway, const Request& req, std::shared_ptr<control::LiveSession> session,
                     const std::string& browser_path, std::function<void(Response)> reply);

// Rewrites "ws://127.0.0.1:<port>/devtools/<kind>/<id>" values of
// webSocketDebuggerUrl to "<ws_base>/devtools/<kind>/<id>?token=<token>" and
// drops devtoolsFrontendUrl (it points at the machine's loopback). Pure.
nlohmann::json rewrite_discovery(nlohmann::json body, const std::string& ws_base, const std::string& token);

}  // namespace kindling::gateway
