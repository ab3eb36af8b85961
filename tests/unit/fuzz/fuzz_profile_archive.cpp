// Fuzzes the saved-profile reader: header, AES-256-GCM unsealing (with a
// fixed key, so the fuzzer mostly meets the authentication failure), zlib
// inflation against the declared size, and the entry list with its names.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "control/profile_archive.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // Small bounds so a fuzzer-made bomb is cheap to refuse.
  kindling::control::ProfileLimits limits;
  limits.max_total_bytes = 4u << 20;
  limits.max_entries = 2000;
  (void)kindling::control::read_profile_archive(input, std::nullopt, limits);
  kindling::control::ProfileKey key{};
  key[0] = 1;
  (void)kindling::control::read_profile_archive(input, key, limits);
  (void)kindling::control::peek_profile_archive(input);
  (void)kindling::control::check_profile_path(input, limits);
  return 0;
}
