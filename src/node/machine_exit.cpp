#include <string.h>

#include "node/machine.hpp"

namespace kindling::node {

std::string MachineExit::describe() const {
  if (signal) {
    const char* name = ::sigabbrev_np(*signal);
    return std::string("killed by signal ") + (name ? std::string("SIG") + name : std::to_string(*signal));
  }
  if (exit_code) return "exited with code " + std::to_string(*exit_code);
  return "ended (no exit status)";
}

}  // namespace kindling::node
