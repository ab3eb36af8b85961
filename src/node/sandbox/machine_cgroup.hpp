// A machine's cgroups: limits on memory, pids and CPU, a place to put the
// machine's root process before it runs, and a way to kill everything in it.
//
// Two layouts exist in the wild. Pure cgroup v2 (cgroup.controllers at the
// root): one directory <root>/<parent>/<id>. Cgroup v1 or hybrid: one
// directory per controller hierarchy (memory, pids, cpu, freezer), plus one
// in the v2 "unified" hierarchy when it is mounted, for its cgroup.kill.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.hpp"
#include "node/machine.hpp"

namespace kindling::node {

class CgroupLayout {
 public:
  // Looks at `root` (normally /sys/fs/cgroup) and creates the parent
  // directories that will hold machine cgroups.
  static Result<CgroupLayout> prepare(const std::string& root, const std::string& parent);

  bool is_v2() const { return v2_; }
  // Directories under which each machine gets a <id> directory.
  const std::vector<std::string>& parent_dirs() const { return parent_dirs_; }
  // Names of machine cgroups that exist now, across all hierarchies.
  std::vector<std::string> existing_machines() const;
  // Kills whatever runs in <parent>/<id> and removes its directories.
  Status destroy(const std::string& id) const;
  // Removes the (empty) parent directories; quietly keeps non-empty ones.
  void remove_parents() const;

 private:
  friend class MachineCgroup;
  bool v2_ = false;
  std::vector<std::string> parent_dirs_;
  // Directory (among parent_dirs_) whose children have cgroup.kill, or empty.
  std::string kill_parent_;
  std::string freezer_parent_;
};

class MachineCgroup {
 public:
  MachineCgroup(const CgroupLayout& layout, std::string id) : layout_(layout), id_(std::move(id)) {}

  // Creates the directories and writes the limits of `spec`.
  Status create(const MachineSpec& spec);
  // Moves `pid` into every hierarchy of this machine.
  Status attach(pid_t pid);
  // Background machines get the lowest CPU weight: they run only on cycles
  // no one else wants (standby launches), and get the default weight back.
  Status set_background(bool background) const;
  // Sends SIGKILL to every process in the machine's cgroup.
  void kill() const;
  // Kills what is left, waits for it to be gone, removes the directories.
  Status destroy() const { return layout_.destroy(id_); }
  // The file holding `name` (e.g. "memory.max"), in whichever hierarchy has it.
  std::string file(const std::string& name) const;

 private:
  CgroupLayout layout_;
  std::string id_;
};

}  // namespace kindling::node
