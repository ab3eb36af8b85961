// The agent's own CDP connection to Chromium: a minimal RFC 6455 websocket
// client over loopback TCP, non-blocking, driven by the agent's epoll loop.
// It exists so the agent can hold a browser-level DevTools session of its own
// (identity overrides live as long as the session that set them). The codec
// parts (handshake, frames) are pure functions so they can be tested and
// fuzzed without a socket. No TLS, no extensions, text and control frames only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kindling::agent {

// A CDP message from a browser session with no domains enabled is small; the
// bound only stops a runaway peer from making PID 1 hold unbounded memory.
inline constexpr std::size_t kMaxWebSocketMessageBytes = 8 << 20;
inline constexpr std::size_t kMaxHandshakeResponseBytes = 16 * 1024;

namespace websocket {

enum Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// The Sec-WebSocket-Accept value a server must answer `key` with.
std::string accept_key(std::string_view key);
std::string base64(std::string_view bytes);

// The client's opening request.
std::string handshake_request(std::string_view host, std::string_view path, std::string_view key);
// Parses the server's answer. nullopt: incomplete; otherwise the number of
// bytes the HTTP response took (frames may follow), or why it is refused.
std::optional<Result<std::size_t>> parse_handshake_response(std::string_view raw, std::string_view key);

// One frame, FIN set unless `fin` is false, masked with `mask` (clients must
// mask every frame they send).
std::string encode_frame(Opcode opcode, std::string_view payload, const std::uint8_t mask[4], bool fin = true);

struct Message {
  Opcode opcode = kText;  // kText, kBinary, kClose, kPing or kPong
  std::string payload;
};

// Decodes a server's byte stream into messages: reassembles fragmented data
// messages, passes control frames through as they come (they may interleave
// with fragments), and refuses masked frames, oversized messages, reserved
// bits and opcodes, and malformed control frames. After an error the stream
// is dead.
class FrameReader {
 public:
  explicit FrameReader(std::size_t max_message_bytes = kMaxWebSocketMessageBytes) : max_(max_message_bytes) {}
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // nullopt: need more bytes.
  std::optional<Result<Message>> next();

 private:
  std::size_t max_;
  std::string buffer_;
  std::string fragments_;
  std::optional<Opcode> fragmented_opcode_;
  bool dead_ = false;
};

}  // namespace websocket

class CdpWebSocket {
 public:
  // Starts a non-blocking connect to 127.0.0.1:port for `path`.
  static Result<CdpWebSocket> connect(std::uint16_t port, std::string path);

  int fd() const { return socket_.get(); }
  bool open() const { return state_ == State::kOpen; }
  // EPOLLIN/EPOLLOUT the socket waits for now.
  std::uint32_t wanted_events() const;

  // Advances on readiness: completes the connect and handshake, flushes
  // queued frames, and returns the text messages that arrived. Answers pings.
  // An error means the connection is gone (including an orderly close).
  Result<std::vector<std::string>> on_events(std::uint32_t events);

  // Queues one text message; sent once the handshake is done.
  void send_text(std::string_view payload);

 private:
  enum class State { kConnecting, kHandshake, kOpen, kClosed };
  Status flush();
  void queue_frame(websocket::Opcode opcode, std::string_view payload);

  UniqueFd socket_;
  State state_ = State::kConnecting;
  std::uint16_t port_ = 0;
  std::string path_;
  std::string key_;
  std::string inbound_;  // handshake bytes until the 101
  websocket::FrameReader reader_;
  std::string outbox_;           // bytes on the wire once open
  std::vector<std::string> waiting_;  // text messages queued before open
};

}  // namespace kindling::agent
