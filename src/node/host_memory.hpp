// What the host has left for another browser.
#pragma once

#include <cstdint>
#include <optional>

namespace kindling::node {

// MemAvailable from /proc/meminfo, in bytes; nullopt if it cannot be read.
std::optional<std::uint64_t> available_memory_bytes();

}  // namespace kindling::node
