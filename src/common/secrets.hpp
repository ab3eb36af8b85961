// Random identifiers and secrets, and how secrets are stored (hashed).
#pragma once

#include <string>
#include <string_view>

namespace kindling {

// `bytes` random bytes from the kernel CSPRNG, lowercase hex encoded.
std::string random_hex(std::size_t bytes);

// `bytes` random bytes, base64url without padding (URL and header safe).
std::string random_token(std::size_t bytes);

// SHA-256 of the input as lowercase hex: secrets are stored only as this.
std::string sha256_hex(std::string_view input);

// SHA-256 of everything readable from `fd` (read to its end), lowercase
// hex; empty with `error` set to errno when a read fails.
std::string sha256_hex_of_fd(int fd, int& error);

// Comparison whose time does not depend on where the inputs differ.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace kindling
