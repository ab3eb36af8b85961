// Logging: one line per event, with the session or VM id where there is one.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace kindling {

// Sets the global level from a name (trace, debug, info, warn, error, off).
// Unknown names leave the level unchanged and return false.
bool set_log_level(std::string_view name);

// Logs go to stderr, so stdout stays for a command's real output.
void init_logging(std::string_view program, std::string_view level = "info");

}  // namespace kindling
