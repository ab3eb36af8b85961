// Test harness for kindling-agent: runs the real binary as a child process
// with a real Chromium, and speaks the real protocol to it (control frames,
// CDP streams, a minimal websocket client). Every process started here is
// killed and reaped on every path.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/agent_protocol.hpp"
#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kindling::agent_test {

using namespace std::chrono_literals;
namespace ap = agent_protocol;

// A directory under /tmp removed with everything in it; traversable by the
// browser uid so the profile inside it can be reached.
class TempDir {
 public:
  explicit TempDir(const std::string& base = "/tmp");
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct AgentOptions {
  std::string chromium = "/usr/lib/chromium/chromium";
  std::vector<std::string> extra_args;
  // Runs the agent under a seccomp filter that refuses new user namespaces
  // (as Docker's default profile does), so Chromium's sandbox cannot start.
  bool deny_user_namespaces = false;
  // Runs the agent as PID 1 of new pid and mount namespaces (through
  // unshare(1)), as in a machine: it then does its own mounts, which land in
  // its private mount namespace. Its files live under /var/tmp, because the
  // agent mounts a fresh tmpfs over /tmp when /tmp is not a mount point.
  bool as_pid1 = false;
};

class AgentProcess {
 public:
  explicit AgentProcess(const AgentOptions& options = {});
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& socket_path() const { return socket_path_; }
  const std::string& user_data_dir() const { return user_data_dir_; }
  const std::string& dir() const { return dir_.path(); }
  // The kindling-agent process itself (differs from pid() when as_pid1).
  pid_t agent_pid();
  // Waits for the agent to exit; its wait status, or nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  bool running();
  std::string log() const;  // the agent's stderr so far

 private:
  void kill_and_reap();
  void check_sanitizer_reports() const;

  std::optional<TempDir> dir_holder_;
  const TempDir& dir_;
  std::string socket_path_, user_data_dir_, log_path_;
  pid_t pid_ = -1;
};

// All live descendants of `pid` (found through /proc parent links).
std::vector<pid_t> descendants(pid_t pid);
bool process_exists(pid_t pid);
std::string process_cmdline(pid_t pid);

// Connects to the agent's socket, retrying until it exists.
Result<UniqueFd> connect_agent(const std::string& socket_path, std::chrono::milliseconds timeout = 10s);
// Reads one '\n'-terminated line (at most 256 bytes).
Result<std::string> read_line(int fd, std::chrono::milliseconds timeout = 10s);
Status write_all(int fd, std::string_view bytes);
// Reads one HTTP/1.1 response with a Content-Length body; empty on failure.
std::string read_http_response(int fd, std::chrono::milliseconds timeout = 10s);
// True when the peer closes its side (EOF) within `timeout`, with no data first.
bool closed_by_peer(int fd, std::chrono::milliseconds timeout = 10s);
// Reads until EOF (bounded); returns what arrived.
std::string read_to_eof(int fd, std::chrono::milliseconds timeout = 10s);

class ControlClient {
 public:
  static Result<ControlClient> connect(const std::string& socket_path);
  Status send(const ap::HostMessage& message);
  Status send_raw(std::string_view bytes);
  // Next message from the agent; an error on timeout, EOF or invalid frame.
  Result<ap::AgentMessage> next(std::chrono::milliseconds timeout = 15s);
  // Skips messages until one of type T arrives.
  template <typename T>
  Result<T> next_of(std::chrono::milliseconds timeout = 15s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return make_error("timed out waiting for a message");
      KINDLING_TRY(message, next(left));
      if (auto* m = std::get_if<T>(&message)) return *m;
    }
  }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  ap::FrameDecoder decoder_;
};

// A CDP stream through the agent: preamble sent and "OK\n" received.
Result<UniqueFd> open_cdp_stream(const std::string& socket_path);

// A minimal RFC 6455 client over an already connected stream.
class WebSocket {
 public:
  static Result<WebSocket> handshake(UniqueFd stream, const std::string& path);
  Status send_text(std::string_view payload);
  Result<std::string> receive_text(std::chrono::milliseconds timeout = 30s);

 private:
  Status read_exact(char* out, std::size_t n, std::chrono::steady_clock::time_point deadline);
  UniqueFd fd_;
  std::string buffered_;
};

// CDP commands over a WebSocket: sends and waits for the reply with its id.
class CdpSession {
 public:
  explicit CdpSession(WebSocket ws) : ws_(std::move(ws)) {}
  Result<nlohmann::json> call(const std::string& method, nlohmann::json params = nlohmann::json::object(),
                              const std::string& session_id = "");

 private:
  WebSocket ws_;
  int next_id_ = 1;
};

}  // namespace kindling::agent_test
