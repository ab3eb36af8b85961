#include "agent/browser_closer.hpp"

#include <nlohmann/json.hpp>

namespace kindling::agent {

BrowserCloser::~BrowserCloser() { drop(); }

void BrowserCloser::drop() {
  if (socket_ && registered_events_ != 0) poller_.remove(socket_->fd());
  registered_events_ = 0;
  socket_.reset();
}

void BrowserCloser::sync_poller() {
  if (!socket_) return;
  std::uint32_t wanted = socket_->wanted_events();
  if (wanted == registered_events_) return;
  if (registered_events_ == 0)
    poller_.add(socket_->fd(), wanted, token_);
  else if (wanted == 0)
    poller_.remove(socket_->fd());
  else
    poller_.modify(socket_->fd(), wanted, token_);
  registered_events_ = wanted;
}

Status BrowserCloser::start(std::uint16_t port, const std::string& browser_path) {
  drop();
  KINDLING_TRY(ws, CdpWebSocket::connect(port, browser_path));
  socket_.emplace(std::move(ws));
  socket_->send_text(R"({"id":1,"method":"Browser.close"})");
  sync_poller();
  return ok_status();
}

Status BrowserCloser::on_events(std::uint32_t events) {
  if (!socket_) return ok_status();
  auto messages = socket_->on_events(events);
  if (!messages) {
    drop();
    if (acknowledged_) return ok_status();
    return make_error("Browser.close: " + messages.error().message);
  }
  for (const auto& text : *messages) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_object() && j.value("id", 0) == 1) acknowledged_ = true;
  }
  sync_poller();
  return ok_status();
}

}  // namespace kindling::agent
