// Applies a session's identity (viewport, user agent, locale, timezone) to a
// running Chromium and keeps it applied to every page the client opens later.
//
// How: the agent holds one browser-level DevTools session of its own and asks
// for auto-attach with waitForDebuggerOnStart, so every page target, existing
// or new (tabs from Target.createTarget, popups from window.open), is attached
// to this session before it runs. Each page gets its Emulation overrides and
// only then Runtime.runIfWaitingForDebugger. Chromium keeps a new target
// paused until every session that asked to wait has resumed it, so a client's
// own auto-attach (Playwright, Puppeteer) coexists with ours. Overrides live
// as long as the session that set them: the connection stays open for the
// browser's life.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/cdp_websocket.hpp"
#include "agent/poller.hpp"
#include "common/agent_protocol.hpp"
#include "common/browser_identity.hpp"

namespace kindling::agent {

// One CDP command of the identity, with what to call it in an error.
struct CdpCommand {
  std::string method;
  nlohmann::json params;
  std::string what;  // "timezone 'Foo/Bar'"
};

// The commands that make one page look like `identity`, in order. A locale
// without a user agent still needs setUserAgentOverride (it carries
// acceptLanguage), so `default_user_agent` fills in the browser's own.
std::vector<CdpCommand> page_identity_commands(const BrowserIdentity& identity, const std::string& default_user_agent);
// Browser-level Target.setAutoAttach that attaches and pauses every target.
CdpCommand auto_attach_command();
// Serializes a CDP request; `session_id` empty means the browser session.
std::string cdp_request(std::uint64_t id, const CdpCommand& command, const std::string& session_id);

class IdentityApplier {
 public:
  using Reply = std::function<void(const agent_protocol::IdentityApplied&)>;

  IdentityApplier(Poller& poller, std::uint64_t token, Reply reply);
  ~IdentityApplier();

  // Starts applying; `reply` is called once with the outcome. Only one
  // identity per browser: a second call is answered with an error.
  void apply(std::uint64_t request_id, const BrowserIdentity& identity, std::uint16_t port,
             const std::string& browser_path, const std::string& default_user_agent);
  void on_events(std::uint32_t events);
  // While an answer waits for Chromium's first page (see kFirstPageWait).
  bool wants_ticks() const { return request_id_ && first_page_deadline_.has_value(); }
  void tick(std::chrono::steady_clock::time_point now);

 private:
  struct AttachedTarget {
    std::string type;
    bool waiting = false;
    std::size_t outstanding = 0;  // identity commands not yet answered
  };
  struct PendingCall {
    std::string session_id;  // empty: browser session
    std::string what;
  };

  void handle(const nlohmann::json& message);
  void on_attached(const nlohmann::json& params);
  void on_response(std::uint64_t id, const nlohmann::json& message);
  void send(const CdpCommand& command, const std::string& session_id);
  void resume(const std::string& session_id);
  void answer_if_done();
  void answer(bool ok, const std::string& error);
  void fail_connection(const std::string& why);
  void sync_poller();

  Poller& poller_;
  std::uint64_t token_;
  Reply reply_;
  std::optional<CdpWebSocket> socket_;
  std::uint32_t registered_events_ = 0;
  std::optional<std::uint64_t> request_id_;  // set until answered
  bool used_ = false;
  bool auto_attach_acked_ = false;
  // Set when auto-attach was acknowledged before Chromium had any page.
  std::optional<std::chrono::steady_clock::time_point> first_page_deadline_;
  BrowserIdentity identity_;
  std::string default_user_agent_;
  std::uint64_t next_call_id_ = 1;
  std::map<std::uint64_t, PendingCall> calls_;
  std::map<std::string, AttachedTarget> targets_;
  std::string first_error_;
};

}  // namespace kindling::agent
