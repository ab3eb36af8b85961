#include "agent/identity_applier.hpp"

#include <sys/epoll.h>

#include "agent/agent_log.hpp"

namespace kindling::agent {

namespace ap = agent_protocol;
using nlohmann::json;

namespace {
// Web content can open many tabs; past this the agent stops tracking new ones
// (they are still resumed) rather than grow without bound.
constexpr std::size_t kMaxTrackedTargets = 4096;
// A browser that has just started may answer CDP before its first tab
// exists. The answer waits this long for that tab, so that a value Chromium
// refuses (an unknown time zone) is reported to the creator, not missed.
constexpr auto kFirstPageWait = std::chrono::seconds(3);
}  // namespace

std::vector<CdpCommand> page_identity_commands(const BrowserIdentity& identity, const std::string& default_user_agent) {
  std::vector<CdpCommand> out;
  if (identity.viewport) {
    const Viewport& v = *identity.viewport;
    out.push_back({"Emulation.setDeviceMetricsOverride",
                   {{"width", v.width},
                    {"height", v.height},
                    {"deviceScaleFactor", 1},
                    {"mobile", false},
                    {"screenWidth", v.width},
                    {"screenHeight", v.height}},
                   "viewport " + std::to_string(v.width) + "x" + std::to_string(v.height)});
  }
  if (identity.user_agent || identity.locale) {
    json params = {{"userAgent", identity.user_agent ? *identity.user_agent : default_user_agent}};
    if (identity.locale) params["acceptLanguage"] = *identity.locale;
    out.push_back({"Emulation.setUserAgentOverride", std::move(params), "user agent / accept-language"});
  }
  if (identity.locale)
    out.push_back({"Emulation.setLocaleOverride", {{"locale", *identity.locale}}, "locale '" + *identity.locale + "'"});
  if (identity.timezone)
    out.push_back({"Emulation.setTimezoneOverride",
                   {{"timezoneId", *identity.timezone}},
                   "timezone '" + *identity.timezone + "'"});
  return out;
}

CdpCommand auto_attach_command() {
  return {"Target.setAutoAttach",
          {{"autoAttach", true}, {"waitForDebuggerOnStart", true}, {"flatten", true}},
          "auto-attach to new pages"};
}

std::string cdp_request(std::uint64_t id, const CdpCommand& command, const std::string& session_id) {
  json j = {{"id", id}, {"method", command.method}, {"params", command.params}};
  if (!session_id.empty()) j["sessionId"] = session_id;
  return j.dump();
}

IdentityApplier::IdentityApplier(Poller& poller, std::uint64_t token, Reply reply)
    : poller_(poller), token_(token), reply_(std::move(reply)) {}

IdentityApplier::~IdentityApplier() {
  if (socket_ && registered_events_ != 0) poller_.remove(socket_->fd());
}

void IdentityApplier::apply(std::uint64_t request_id, const BrowserIdentity& identity, std::uint16_t port,
                            const std::string& browser_path, const std::string& default_user_agent) {
  if (used_) {
    reply_(ap::IdentityApplied{request_id, false, "this browser already has an identity"});
    return;
  }
  used_ = true;
  request_id_ = request_id;
  identity_ = identity;
  default_user_agent_ = default_user_agent;
  auto ws = CdpWebSocket::connect(port, browser_path);
  if (!ws) return answer(false, ws.error().message);
  socket_.emplace(std::move(ws).value());
  send(auto_attach_command(), "");
  sync_poller();
}

void IdentityApplier::sync_poller() {
  if (!socket_) return;
  std::uint32_t wanted = socket_->wanted_events();
  if (wanted == registered_events_) return;
  if (registered_events_ == 0) poller_.add(socket_->fd(), wanted, token_);
  else if (wanted == 0) poller_.remove(socket_->fd());
  else poller_.modify(socket_->fd(), wanted, token_);
  registered_events_ = wanted;
}

void IdentityApplier::on_events(std::uint32_t events) {
  if (!socket_) return;
  auto messages = socket_->on_events(events);
  if (!messages) return fail_connection(messages.error().message);
  for (const auto& text : *messages) {
    json message = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!message.is_object()) {
      log_warn("identity: Chromium sent a CDP message that is not a JSON object");
      continue;
    }
    handle(message);
  }
  sync_poller();
}

void IdentityApplier::fail_connection(const std::string& why) {
  if (registered_events_ != 0) poller_.remove(socket_->fd());
  registered_events_ = 0;
  socket_.reset();
  if (request_id_) return answer(false, "DevTools connection lost while applying the identity: " + why);
  // The overrides went with the connection. Chromium closing it means it is
  // exiting, which the host hears about from the browser supervisor.
  log_warn("identity: DevTools connection closed: " + why);
}

void IdentityApplier::send(const CdpCommand& command, const std::string& session_id) {
  std::uint64_t id = next_call_id_++;
  calls_[id] = {session_id, command.what};
  socket_->send_text(cdp_request(id, command, session_id));
}

void IdentityApplier::handle(const json& message) {
  if (auto id = message.find("id"); id != message.end()) {
    if (id->is_number_unsigned()) on_response(id->get<std::uint64_t>(), message);
    return;
  }
  auto method = message.find("method");
  if (method == message.end() || !method->is_string()) return;
  auto params = message.find("params");
  if (params == message.end() || !params->is_object()) return;
  const auto& name = method->get_ref<const std::string&>();
  if (name == "Target.attachedToTarget") return on_attached(*params);
  if (name == "Target.detachedFromTarget") {
    if (auto sid = params->find("sessionId"); sid != params->end() && sid->is_string()) {
      targets_.erase(sid->get<std::string>());
      answer_if_done();
    }
  }
}

void IdentityApplier::on_attached(const json& params) {
  auto sid = params.find("sessionId");
  auto info = params.find("targetInfo");
  if (sid == params.end() || !sid->is_string() || info == params.end() || !info->is_object()) return;
  std::string session_id = sid->get<std::string>();
  std::string type = info->value("type", std::string());
  bool waiting = params.value("waitingForDebugger", false);
  if (type != "page" || targets_.size() >= kMaxTrackedTargets) {
    // Workers and the like: nothing of the identity applies through a
    // browser-level session; never leave them paused.
    if (waiting) resume(session_id);
    return;
  }
  AttachedTarget& target = targets_[session_id];
  target.type = type;
  target.waiting = waiting;
  auto commands = page_identity_commands(identity_, default_user_agent_);
  target.outstanding = commands.size();
  for (const auto& command : commands) send(command, session_id);
  if (commands.empty() && waiting) resume(session_id);
  log_debug("identity: page " + info->value("targetId", std::string()) + " attached" +
            (waiting ? " (paused until its identity is applied)" : ""));
}

void IdentityApplier::resume(const std::string& session_id) {
  send({"Runtime.runIfWaitingForDebugger", json::object(), "resume"}, session_id);
}

void IdentityApplier::on_response(std::uint64_t id, const json& message) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  PendingCall call = std::move(it->second);
  calls_.erase(it);
  if (auto error = message.find("error"); error != message.end()) {
    std::string detail = error->is_object() ? error->value("message", std::string("unknown error")) : "unknown error";
    std::string what = (call.session_id.empty() ? "Chromium failed to " : "Chromium refused ") + call.what + ": " +
                       detail.substr(0, 200);
    // A page that closed mid-apply answers with an error too; only errors
    // from pages that are still there say anything about the identity.
    if (call.session_id.empty() || targets_.count(call.session_id)) {
      log_warn("identity: " + what);
      if (first_error_.empty() && call.what != "resume") first_error_ = what;
    }
  }
  if (call.session_id.empty()) {
    auto_attach_acked_ = true;
    if (targets_.empty()) first_page_deadline_ = std::chrono::steady_clock::now() + kFirstPageWait;
    return answer_if_done();
  }
  auto target = targets_.find(call.session_id);
  if (target == targets_.end() || target->second.outstanding == 0) return;
  if (--target->second.outstanding == 0) {
    if (target->second.waiting) resume(call.session_id);
    answer_if_done();
  }
}

void IdentityApplier::answer_if_done() {
  if (!request_id_) return;
  if (!first_error_.empty()) return answer(false, first_error_);
  if (!auto_attach_acked_) return;
  if (targets_.empty() && first_page_deadline_ && std::chrono::steady_clock::now() < *first_page_deadline_) return;
  for (const auto& [sid, target] : targets_)
    if (target.outstanding > 0) return;
  answer(true, "");
}

void IdentityApplier::tick(std::chrono::steady_clock::time_point now) {
  if (!request_id_ || !first_page_deadline_ || now < *first_page_deadline_) return;
  log_info("identity: Chromium opened no page within the wait; answering without one");
  answer_if_done();
}

void IdentityApplier::answer(bool ok, const std::string& error) {
  if (!request_id_) return;
  first_page_deadline_.reset();
  std::uint64_t id = *request_id_;
  request_id_.reset();
  if (ok) log_info("identity applied to " + std::to_string(targets_.size()) + " page(s); new pages get it too");
  else log_warn("identity not applied: " + error);
  reply_(ap::IdentityApplied{id, ok, ok ? std::string() : error});
}

}  // namespace kindling::agent
