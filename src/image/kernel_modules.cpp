#include "image/kernel_modules.hpp"

#include <elf.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

namespace kindling::image {

std::vector<std::string> guest_module_names(const std::string& root_fstype) {
  return {"virtio_mmio", "virtio_blk", "virtio_net", "vmw_vsock_virtio_transport", root_fstype, "overlay"};
}

std::string module_name_of(const std::string& path) {
  std::string base = path.substr(path.rfind('/') + 1);
  base = base.substr(0, base.find(".ko"));
  for (auto& c : base)
    if (c == '-') c = '_';
  return base;
}

Result<std::vector<std::string>> modinfo_depends(const std::string& ko) {
  Elf64_Ehdr eh{};
  if (ko.size() < sizeof eh || std::memcmp(ko.data(), ELFMAG, SELFMAG) != 0 || ko[EI_CLASS] != ELFCLASS64)
    return make_error("not a 64-bit ELF module");
  std::memcpy(&eh, ko.data(), sizeof eh);
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shoff + std::uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr) > ko.size() ||
      eh.e_shstrndx >= eh.e_shnum)
    return make_error("module has a malformed section table");
  auto section = [&](std::size_t i) {
    Elf64_Shdr sh{};
    std::memcpy(&sh, ko.data() + eh.e_shoff + i * sizeof(Elf64_Shdr), sizeof sh);
    return sh;
  };
  const Elf64_Shdr names = section(eh.e_shstrndx);
  if (names.sh_offset + names.sh_size > ko.size()) return make_error("module has a malformed section name table");
  for (std::size_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh = section(i);
    if (sh.sh_name >= names.sh_size) continue;
    const char* name = ko.data() + names.sh_offset + sh.sh_name;
    if (std::strncmp(name, ".modinfo", names.sh_size - sh.sh_name) != 0) continue;
    if (sh.sh_offset + sh.sh_size > ko.size()) return make_error("module .modinfo runs past the end");
    std::string info = ko.substr(sh.sh_offset, sh.sh_size);
    std::vector<std::string> deps;
    for (std::size_t at = 0; at < info.size();) {
      std::size_t end = info.find('\0', at);
      if (end == std::string::npos) end = info.size();
      std::string entry = info.substr(at, end - at);
      if (entry.rfind("depends=", 0) == 0) {
        std::istringstream list(entry.substr(8));
        for (std::string d; std::getline(list, d, ',');)
          if (!d.empty()) deps.push_back(d);
      }
      at = end + 1;
    }
    return deps;
  }
  return make_error("module has no .modinfo section");
}

Result<std::string> modules_dep_from_tree(const std::string& root) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> path_of;
  std::map<std::string, std::vector<std::string>> deps_of;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::string path = it->path().string();
    if (!it->is_regular_file() || path.size() < 3 || path.compare(path.size() - 3, 3, ".ko") != 0) continue;
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    auto deps = modinfo_depends(bytes.str());
    if (!deps) return make_error(path + ": " + deps.error().message);
    std::string rel = fs::relative(it->path(), root).string();
    path_of[module_name_of(rel)] = rel;
    deps_of[rel] = *deps;
  }
  if (ec) return make_error("cannot list " + root + ": " + ec.message());
  // modules.dep lists the whole closure; the direct dependencies are enough
  // here, since plan_modules follows them recursively.
  std::string out;
  for (const auto& [rel, deps] : deps_of) {
    out += rel + ":";
    for (const auto& d : deps) {
      auto p = path_of.find(module_name_of(d));
      if (p == path_of.end()) return make_error(rel + " depends on " + d + ", which is not in the package");
      out += " " + p->second;
    }
    out += "\n";
  }
  return out;
}

Result<ModulePlan> plan_modules(const std::string& modules_dep, const std::string& modules_builtin,
                                const std::vector<std::string>& wanted) {
  std::map<std::string, std::string> path_of;                  // name -> path
  std::map<std::string, std::vector<std::string>> deps_of;     // path -> dependency paths
  std::istringstream dep(modules_dep);
  for (std::string line; std::getline(dep, line);) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string path = line.substr(0, colon);
    path_of[module_name_of(path)] = path;
    std::istringstream rest(line.substr(colon + 1));
    for (std::string d; rest >> d;) deps_of[path].push_back(d);
  }
  std::set<std::string> builtin;
  std::istringstream bi(modules_builtin);
  for (std::string line; std::getline(bi, line);)
    if (!line.empty()) builtin.insert(module_name_of(line));

  ModulePlan plan;
  std::set<std::string> placed;
  std::set<std::string> visiting;
  std::string missing;
  // Depth-first, dependencies before their user: the init loads the list in
  // order with no resolver of its own.
  std::function<bool(const std::string&)> place = [&](const std::string& path) {
    if (placed.count(path)) return true;
    if (!visiting.insert(path).second) return false;  // a cycle: modules.dep never has one
    for (const auto& d : deps_of[path])
      if (!place(d)) return false;
    visiting.erase(path);
    placed.insert(path);
    plan.load_order.push_back(path);
    return true;
  };
  for (const auto& name : wanted) {
    if (builtin.count(name)) {
      plan.builtin.push_back(name);
      continue;
    }
    auto it = path_of.find(name);
    if (it == path_of.end()) {
      missing += (missing.empty() ? "" : ", ") + name;
      continue;
    }
    if (!place(it->second)) return make_error("modules.dep has a dependency cycle through " + it->second);
  }
  if (!missing.empty()) return make_error("the guest kernel has neither a module nor a built-in for: " + missing);
  return plan;
}

}  // namespace kindling::image
