#include "node/sandbox/machine_cgroup.hpp"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace kindling::node {
namespace {

bool exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

Status write_file(const std::string& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return make_error("cannot open " + path + ": " + std::strerror(errno));
  ssize_t n = ::write(fd, content.data(), content.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(content.size())) {
    return make_error("cannot write '" + content + "' to " + path + ": " + std::strerror(err));
  }
  return ok_status();
}

Status make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return make_error("cannot create cgroup " + path + ": " + std::strerror(errno));
  }
  return ok_status();
}

std::vector<pid_t> procs_of(const std::string& dir) {
  std::vector<pid_t> pids;
  std::ifstream in(dir + "/cgroup.procs");
  pid_t pid;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

std::vector<std::string> subdirs(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = ::readdir(d)) {
    if (e->d_type == DT_DIR && e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  ::closedir(d);
  return names;
}

void kill_all(const CgroupLayout& layout, const std::string& kill_parent,
              const std::string& freezer_parent, const std::string& id) {
  if (!kill_parent.empty()) {
    // v2: the kernel kills every process of the subtree at once.
    if (write_file(kill_parent + "/" + id + "/cgroup.kill", "1")) return;
  }
  // v1: freeze so nothing forks while we kill, then kill each process.
  std::string freezer = freezer_parent.empty() ? "" : freezer_parent + "/" + id;
  if (!freezer.empty() && exists(freezer)) (void)write_file(freezer + "/freezer.state", "FROZEN");
  for (const auto& parent : layout.parent_dirs()) {
    for (pid_t pid : procs_of(parent + "/" + id)) ::kill(pid, SIGKILL);
  }
  if (!freezer.empty() && exists(freezer)) (void)write_file(freezer + "/freezer.state", "THAWED");
}

}  // namespace

Result<CgroupLayout> CgroupLayout::prepare(const std::string& root, const std::string& parent) {
  if (parent.empty() || parent.find("..") != std::string::npos) {
    return make_error("invalid cgroup parent '" + parent + "'");
  }
  CgroupLayout layout;
  if (exists(root + "/cgroup.controllers")) {
    layout.v2_ = true;
    std::string dir = root + "/" + parent;
    // Create each level of a nested parent ("a/b"), enabling the
    // controllers on the way down so the leaf's children can use them.
    std::string at = root;
    std::stringstream parts(parent);
    std::string part;
    while (std::getline(parts, part, '/')) {
      if (part.empty()) continue;
      (void)write_file(at + "/cgroup.subtree_control", "+memory +pids +cpu");
      at += "/" + part;
      KINDLING_TRY(made, make_dir(at));
      (void)made;
    }
    KINDLING_TRY(enabled, write_file(dir + "/cgroup.subtree_control", "+memory +pids +cpu"));
    (void)enabled;
    layout.parent_dirs_ = {dir};
    layout.kill_parent_ = dir;  // cgroup.kill (Linux 5.14+); kill_all falls back to a loop
    return layout;
  }
  for (const char* controller : {"memory", "pids", "cpu"}) {
    std::string hierarchy = root + "/" + controller;
    if (!exists(hierarchy + "/cgroup.procs")) {
      return make_error("cgroup v1 hierarchy " + hierarchy + " is not mounted");
    }
  }
  for (const char* controller : {"memory", "pids", "cpu", "freezer", "unified"}) {
    std::string hierarchy = root + "/" + controller;
    if (!exists(hierarchy + "/cgroup.procs")) continue;  // freezer, unified: optional
    std::string dir = hierarchy + "/" + parent;
    KINDLING_TRY(made, make_dir(dir));
    (void)made;
    layout.parent_dirs_.push_back(dir);
    if (std::string(controller) == "freezer") layout.freezer_parent_ = dir;
    // cgroup.kill exists in v2 since Linux 5.14, in every cgroup but the root.
    if (std::string(controller) == "unified" && exists(dir + "/cgroup.kill")) layout.kill_parent_ = dir;
  }
  return layout;
}

std::vector<std::string> CgroupLayout::existing_machines() const {
  std::set<std::string> ids;
  for (const auto& parent : parent_dirs_) {
    for (auto& name : subdirs(parent)) ids.insert(std::move(name));
  }
  return {ids.begin(), ids.end()};
}

Status CgroupLayout::destroy(const std::string& id) const {
  // Processes leave a cgroup only once fully reaped; wait for that, killing
  // again in case something forked in between (v1 without a freezer).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    bool empty = true;
    for (const auto& parent : parent_dirs_) {
      if (!procs_of(parent + "/" + id).empty()) empty = false;
    }
    if (empty) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return make_error("processes of machine " + id + " survived SIGKILL for 10 s");
    }
    kill_all(*this, kill_parent_, freezer_parent_, id);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::string failures;
  for (const auto& parent : parent_dirs_) {
    std::string dir = parent + "/" + id;
    // rmdir can briefly report EBUSY while the last task's exit completes.
    for (int attempt = 0;; ++attempt) {
      if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) break;
      if (errno != EBUSY || attempt >= 1000) {
        failures += " " + dir + ": " + std::strerror(errno);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  if (!failures.empty()) return make_error("cannot remove cgroups of machine " + id + ":" + failures);
  return ok_status();
}

void CgroupLayout::remove_parents() const {
  for (const auto& parent : parent_dirs_) ::rmdir(parent.c_str());
}

Status MachineCgroup::create(const MachineSpec& spec) {
  for (const auto& parent : layout_.parent_dirs_) {
    KINDLING_TRY(made, make_dir(parent + "/" + id_));
    (void)made;
  }
  const auto quota = static_cast<long long>(std::llround(spec.cpu_limit * 100000.0));
  const std::string memory = std::to_string(spec.memory_limit_bytes);
  const std::string pids = std::to_string(spec.pids_limit);
  if (layout_.v2_) {
    std::string dir = layout_.parent_dirs_.front() + "/" + id_;
    KINDLING_TRY(m, write_file(dir + "/memory.max", memory));
    (void)m;
    // Without swap limits a machine could push its memory out to swap.
    if (exists(dir + "/memory.swap.max")) {
      KINDLING_TRY(s, write_file(dir + "/memory.swap.max", "0"));
      (void)s;
    }
    KINDLING_TRY(p, write_file(dir + "/pids.max", pids));
    (void)p;
    KINDLING_TRY(c, write_file(dir + "/cpu.max", std::to_string(quota) + " 100000"));
    (void)c;
    return spec.background ? set_background(true) : ok_status();
  }
  std::string root_of_parent;  // <root>/<controller>/<parent>/<id>
  for (const auto& parent : layout_.parent_dirs_) {
    std::string dir = parent + "/" + id_;
    if (exists(dir + "/memory.limit_in_bytes")) {
      KINDLING_TRY(m, write_file(dir + "/memory.limit_in_bytes", memory));
      (void)m;
      if (exists(dir + "/memory.memsw.limit_in_bytes")) {
        KINDLING_TRY(s, write_file(dir + "/memory.memsw.limit_in_bytes", memory));
        (void)s;
      }
    } else if (exists(dir + "/pids.max")) {
      KINDLING_TRY(p, write_file(dir + "/pids.max", pids));
      (void)p;
    } else if (exists(dir + "/cpu.cfs_quota_us")) {
      KINDLING_TRY(period, write_file(dir + "/cpu.cfs_period_us", "100000"));
      (void)period;
      KINDLING_TRY(c, write_file(dir + "/cpu.cfs_quota_us", std::to_string(quota)));
      (void)c;
    }
  }
  return spec.background ? set_background(true) : ok_status();
}

Status MachineCgroup::set_background(bool background) const {
  // The lowest weight the kernel allows, against the default of everyone else.
  if (layout_.v2_)
    return write_file(layout_.parent_dirs_.front() + "/" + id_ + "/cpu.weight", background ? "1" : "100");
  for (const auto& parent : layout_.parent_dirs_) {
    std::string path = parent + "/" + id_ + "/cpu.shares";
    if (exists(path)) return write_file(path, background ? "2" : "1024");
  }
  return make_error("no cpu controller for machine " + id_);
}

Status MachineCgroup::attach(pid_t pid) {
  for (const auto& parent : layout_.parent_dirs_) {
    KINDLING_TRY(w, write_file(parent + "/" + id_ + "/cgroup.procs", std::to_string(pid)));
    (void)w;
  }
  return ok_status();
}

void MachineCgroup::kill() const { kill_all(layout_, layout_.kill_parent_, layout_.freezer_parent_, id_); }

std::string MachineCgroup::file(const std::string& name) const {
  for (const auto& parent : layout_.parent_dirs_) {
    std::string path = parent + "/" + id_ + "/" + name;
    if (exists(path)) return path;
  }
  return {};
}

}  // namespace kindling::node
