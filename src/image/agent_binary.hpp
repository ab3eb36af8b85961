// What the image needs of the agent binary: an ELF executable with no
// program interpreter (statically linked), so it runs on any root.
#pragma once

#include <string>

#include "common/result.hpp"

namespace kindling::image {

// Ok if `path` is a 64-bit x86-64 ELF executable without PT_INTERP; an error
// saying what it is otherwise.
Status check_static_elf(const std::string& path);

}  // namespace kindling::image
