#include "image/guest_boot.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "image/cpio_newc.hpp"
#include "image/kernel_modules.hpp"
#include "image/tool_run.hpp"

namespace kindling::image {
namespace {

namespace fs = std::filesystem;

Result<std::string> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Result<std::string> kernel_package_from_depends(const std::string& out) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    auto at = line.find("Depends: ");
    if (at == std::string::npos) continue;
    std::string name = line.substr(at + 9);
    if (name.rfind("linux-image-", 0) == 0 && name.find('<') == std::string::npos) return name;
  }
  return make_error("apt-cache depends names no linux-image-* package (run apt-get update)");
}

Result<GuestBoot> build_guest_boot(const GuestBootInputs& in) {
  GuestBoot boot;
  KINDLING_TRY(depends, run_tool({{"apt-cache", "depends", in.kernel_package}, {}, in.log, true}));
  KINDLING_TRY(package, kernel_package_from_depends(depends));
  boot.kernel_package = package;

  std::error_code ec;
  const std::string deb_dir = in.work_dir + "/kernel-deb";
  const std::string tree = in.work_dir + "/kernel-tree";
  fs::create_directories(deb_dir, ec);
  fs::create_directories(tree, ec);
  // apt-get download drops to the _apt user for the transfer: it needs to
  // write the directory.
  ::chmod(deb_dir.c_str(), 0777);
  ToolRun download{{"apt-get", "download", "-q", package}, {}, in.log};
  download.cwd = deb_dir;
  KINDLING_TRY(downloaded, run_tool(download));
  (void)downloaded;
  std::string deb;
  for (const auto& e : fs::directory_iterator(deb_dir, ec))
    if (e.path().extension() == ".deb") deb = e.path().string();
  if (deb.empty()) return make_error("apt-get download left no .deb in " + deb_dir);
  KINDLING_TRY(extracted, run_tool({{"dpkg-deb", "-x", deb, tree}, {}, in.log}));
  (void)extracted;

  for (const auto& e : fs::directory_iterator(tree + "/boot", ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("vmlinuz-", 0) == 0) boot.kernel_version = name.substr(8);
  }
  if (boot.kernel_version.empty()) return make_error(package + " has no /boot/vmlinuz-*");
  fs::copy_file(tree + "/boot/vmlinuz-" + boot.kernel_version, in.out_dir + "/" + kKernelFileName,
                fs::copy_options::overwrite_existing, ec);
  if (ec) return make_error("cannot copy the kernel: " + ec.message());

  const std::string mod_root = tree + "/lib/modules/" + boot.kernel_version;
  KINDLING_TRY(dep, modules_dep_from_tree(mod_root));
  KINDLING_TRY(builtin, slurp(mod_root + "/modules.builtin"));
  KINDLING_TRY(plan, plan_modules(dep, builtin, guest_module_names(in.root_fstype)));
  boot.modules = plan.load_order;
  boot.builtin = plan.builtin;

  CpioArchive cpio;
  for (const char* d : {"dev", "proc", "sys", "lower", "rw", "newroot", "etc", "kindling", "lib", "lib/modules"})
    cpio.add_directory(d);
  // The kernel opens /dev/console for init's stdio before init runs: it must
  // exist in the archive, devtmpfs is not mounted yet.
  cpio.add_char_device("dev/console", 5, 1);
  KINDLING_TRY(init, slurp(in.init_path));
  cpio.add_file("init", std::move(init), 0755);
  KINDLING_TRY(agent, slurp(in.agent_path));
  cpio.add_file("kindling/agent", std::move(agent), 0755);
  std::string list;
  for (const auto& rel : plan.load_order) {
    // Flat names: the init needs no directory tree, only the order.
    std::string flat = rel.substr(rel.rfind('/') + 1);
    KINDLING_TRY(ko, slurp(mod_root + "/" + rel));
    cpio.add_file("lib/modules/" + flat, std::move(ko), 0644);
    list += flat + "\n";
  }
  cpio.add_file("etc/kindling-modules", list, 0644);
  const std::string bytes = cpio.bytes(static_cast<std::uint32_t>(in.mtime));
  std::ofstream out(in.out_dir + "/" + kInitramfsFileName, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) return make_error("cannot write " + in.out_dir + "/" + kInitramfsFileName);
  return boot;
}

Status check_initramfs(const std::string& bytes, const std::vector<std::string>& required) {
  KINDLING_TRY(entries, read_cpio_newc(bytes));
  std::set<std::string> files;
  std::string list;
  for (const auto& e : entries) {
    if (e.kind == CpioEntry::Kind::kFile) files.insert(e.name);
    if (e.name == "etc/kindling-modules") list = e.data;
  }
  std::string missing;
  for (const char* f : {"init", "kindling/agent", "etc/kindling-modules"})
    if (!files.count(f)) missing += std::string(missing.empty() ? "" : ", ") + f;
  std::set<std::string> listed;
  std::istringstream in(list);
  for (std::string ko; std::getline(in, ko);) {
    if (ko.empty()) continue;
    if (!files.count("lib/modules/" + ko)) missing += (missing.empty() ? "" : ", ") + ("lib/modules/" + ko);
    listed.insert(module_name_of(ko));
  }
  for (const auto& name : required)
    if (!listed.count(name)) missing += (missing.empty() ? "" : ", ") + ("module " + name);
  if (!missing.empty()) return make_error("initramfs lacks: " + missing);
  return ok_status();
}

}  // namespace kindling::image
