// The CDP websocket proxy: one client websocket relayed message by message to
// a websocket on the session's Chromium, through an agent CDP stream. It
// looks inside one kind of message only: setDownloadBehavior, so downloads
// stay where GET /v1/sessions/{id}/files finds them. When the session ends the client
// gets a close frame with a code and a reason, never a silent drop.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <memory>
#include <string>

#include "control/session_manager.hpp"
#include "gateway/http_response.hpp"
#include "gateway/lingering_close.hpp"
#include "node/agent_link.hpp"

namespace kindling::gateway {

class Gateway;

class CdpProxy : public control::SessionClient, public std::enable_shared_from_this<CdpProxy> {
 public:
  static void start(Gateway& gateway, std::shared_ptr<control::LiveSession> session, boost::beast::tcp_stream stream,
                    Request upgrade, std::string browser_path);
  ~CdpProxy() override;

  void terminate(int close_code, const std::string& reason) override;

 private:
  // Its teardown lingers, so a client mid-send still reads our close frame.
  using ClientSocket = boost::beast::websocket::stream<LingeringStream>;
  using BrowserSocket = boost::beast::websocket::stream<node::AgentSocket>;

  CdpProxy(Gateway& gateway, std::shared_ptr<control::LiveSession> session, boost::beast::tcp_stream stream,
           Request upgrade, std::string browser_path);
  void connect_browser();
  void accept_client();
  void refuse(http::status status, const std::string& code, const std::string& message);
  void relay_client_to_browser();
  // Points a client's setDownloadBehavior at the session's downloads area
  // (cdp_download_path.hpp), in the message just read.
  void keep_downloads_in_session();
  void relay_browser_to_client();
  void close_client(boost::beast::websocket::close_reason reason);
  void finish();

  Gateway& gateway_;
  std::shared_ptr<control::LiveSession> session_;
  boost::beast::tcp_stream pre_upgrade_;
  Request upgrade_;
  std::string browser_path_;
  boost::asio::steady_timer grace_timer_;
  std::unique_ptr<ClientSocket> client_;
  std::unique_ptr<BrowserSocket> browser_;
  boost::beast::flat_buffer from_client_;
  boost::beast::flat_buffer from_browser_;
  bool writing_to_client_ = false;
  bool client_closing_ = false;
  bool attached_ = false;
  bool finished_ = false;
  std::optional<boost::beast::websocket::close_reason> pending_close_;
};

}  // namespace kindling::gateway
