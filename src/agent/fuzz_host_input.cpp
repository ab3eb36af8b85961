// libFuzzer target: everything the agent parses from bytes it does not
// control. The first byte picks the parser; the rest is its input. Built only
// with -DKINDLING_FUZZ=ON and clang:
//   ./fuzz_agent_host_input -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/cdp_version_probe.hpp"
#include "agent/cdp_websocket.hpp"
#include "agent/chromium_process.hpp"
#include "agent/control_channel.hpp"
#include "agent/machine_init.hpp"

using namespace kindling::agent;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      // A host connection: preamble, then (for control) frames, in chunks
      // whose sizes come from the input itself.
      PreambleReader preamble;
      std::string_view rest = input;
      std::optional<kindling::Result<PreambleReader::Preamble>> outcome;
      while (!rest.empty() && !outcome) {
        std::size_t n = 1 + static_cast<unsigned char>(rest[0]) % 16;
        n = n > rest.size() ? rest.size() : n;
        outcome = preamble.feed(rest.substr(0, n));
        rest.remove_prefix(n);
      }
      if (!outcome || !outcome->ok()) return 0;
      ControlInbox inbox;
      inbox.feed(outcome->value().leftover);
      while (inbox.next()) {
      }
      inbox.feed(rest);
      while (inbox.next()) {
      }
      return 0;
    }
    case 1: {
      ControlInbox inbox;
      std::string_view rest = input;
      while (!rest.empty()) {
        std::size_t n = 1 + static_cast<unsigned char>(rest[0]) % 64;
        n = n > rest.size() ? rest.size() : n;
        inbox.feed(rest.substr(0, n));
        rest.remove_prefix(n);
        while (inbox.next()) {
        }
      }
      return 0;
    }
    case 2:
      (void)parse_json_version_response(input, false);
      (void)parse_json_version_response(input, true);
      return 0;
    case 3: {
      // Chromium's side of the agent's own DevTools websocket: handshake
      // answer, then frames fed in input-sized chunks.
      auto handshake = websocket::parse_handshake_response(input, "dGhlIHNhbXBsZSBub25jZQ==");
      websocket::FrameReader reader(1 << 16);
      std::string_view rest = input;
      if (handshake && handshake->ok()) rest.remove_prefix(handshake->value());
      while (!rest.empty()) {
        std::size_t n = 1 + static_cast<unsigned char>(rest[0]) % 32;
        n = n > rest.size() ? rest.size() : n;
        reader.feed(rest.substr(0, n));
        rest.remove_prefix(n);
        while (auto m = reader.next())
          if (!m->ok()) return 0;
      }
      return 0;
    }
    default:
      (void)parse_devtools_active_port(input);
      (void)find_sandbox_refusal(input);
      (void)parse_mount_points(input);
      return 0;
  }
}
