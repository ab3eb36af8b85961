#include "image/agent_binary.hpp"

#include <elf.h>

#include <cstring>
#include <fstream>
#include <vector>

namespace kindling::image {

Status check_static_elf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(path + " cannot be read");
  Elf64_Ehdr eh{};
  if (!in.read(reinterpret_cast<char*>(&eh), sizeof eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
    return make_error(path + " is not an ELF file");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64)
    return make_error(path + " is not an x86-64 ELF executable");
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) return make_error(path + " is not an executable");
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 256)
    return make_error(path + " has no usable program headers");
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  in.seekg(static_cast<std::streamoff>(eh.e_phoff));
  if (!in.read(reinterpret_cast<char*>(ph.data()), static_cast<std::streamsize>(ph.size() * sizeof(Elf64_Phdr))))
    return make_error(path + " is truncated");
  for (const auto& p : ph) {
    if (p.p_type == PT_INTERP)
      return make_error(path + " is dynamically linked (it has a program interpreter); the image needs a static "
                               "kindling-agent (build with -DKINDLING_STATIC_AGENT=ON, the default)");
  }
  return ok_status();
}

}  // namespace kindling::image
