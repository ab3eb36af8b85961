#include "image/kernel_modules.hpp"

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
