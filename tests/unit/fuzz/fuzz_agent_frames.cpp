// Fuzzes the host's view of an agent: the frame stream and every message
// parser, as a hostile guest would feed them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/agent_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace ap = kindling::agent_protocol;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)ap::parse_preamble(input.substr(0, 80));
  ap::FrameDecoder decoder;
  // Feed in uneven pieces to exercise reassembly.
  std::size_t pos = 0, step = 1;
  while (pos < input.size()) {
    auto piece = input.substr(pos, step);
    pos += piece.size();
    step = step * 3 % 17 + 1;
    if (!decoder.feed(piece)) break;
    while (auto frame = decoder.next()) {
      if (!*frame) break;
      (void)ap::parse_agent_message(frame->value());
      (void)ap::parse_host_message(frame->value());
    }
  }
  return 0;
}
