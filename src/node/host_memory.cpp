#include "node/host_memory.hpp"

#include <cstdio>
#include <cstring>

namespace kindling::node {

std::optional<std::uint64_t> available_memory_bytes() {
  std::FILE* f = std::fopen("/proc/meminfo", "re");
  if (!f) return std::nullopt;
  char line[256];
  std::optional<std::uint64_t> kib;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long value = 0;
    if (std::sscanf(line, "MemAvailable: %llu kB", &value) == 1) {
      kib = value;
      break;
    }
  }
  std::fclose(f);
  if (!kib) return std::nullopt;
  return *kib * 1024;
}

}  // namespace kindling::node
