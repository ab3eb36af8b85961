// The agent's side of what the host sends: the preamble line that opens every
// connection, and the framed messages of a control connection. Both are pure
// byte-in/value-out parsers with no I/O, so they can be fuzzed (fuzz/) and
// tested without sockets.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/agent_protocol.hpp"
#include "common/result.hpp"

namespace kindling::agent {

// Accumulates a connection's first bytes until its preamble line.
class PreambleReader {
 public:
  struct Preamble {
    agent_protocol::ConnectionKind kind;
    std::string leftover;  // bytes the host sent after the line: they belong to the stream
  };
  // nullopt: need more bytes. An error: refuse the connection (the message is
  // short and safe to send back after "ERR ").
  std::optional<Result<Preamble>> feed(std::string_view bytes);

 private:
  std::string line_;
};

// A control connection's inbound stream, decoded into validated host messages.
class ControlInbox {
 public:
  struct Item {
    enum class Kind {
      kMessage,  // a valid host message
      kInvalid,  // a well-framed message that is not a valid host message: answer, keep going
      kBroken,   // the stream cannot be resynchronised (oversized frame): drop the connection
    };
    Kind kind = Kind::kMessage;
    agent_protocol::HostMessage message;
    std::string error;
  };
  // Appends bytes; false once the stream is broken.
  bool feed(std::string_view bytes);
  std::optional<Item> next();

 private:
  agent_protocol::FrameDecoder decoder_;
  bool broken_ = false;
  std::string broken_reason_;
  bool broken_reported_ = false;
};

}  // namespace kindling::agent
