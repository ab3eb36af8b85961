// The namespace sandbox backend (DESIGN.md "The machine layer"): each
// machine is kindling-agent as PID 1 of new user, pid, mount, net, ipc, uts
// and cgroup namespaces, in its own cgroups, on a read-only root with a tmpfs
// scratch area, under a seccomp filter. docs/sandbox.md explains the choices.
#pragma once

#include <linux/filter.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "node/machine.hpp"
#include "node/network/network_slots.hpp"
#include "node/output_collector.hpp"
#include "node/sandbox/machine_cgroup.hpp"
#include "node/sandbox/sandbox_config.hpp"
#include "node/sandbox/uid_range_pool.hpp"

namespace kindling::node {

// State shared by the backend and the machines it started (a machine may
// outlive the backend object that made it).
// The browser's user inside every machine (the agent's --browser-uid/gid).
inline constexpr uid_t kMachineBrowserUid = 1000;

struct SandboxHost {
  SandboxHost(SandboxConfig c, CgroupLayout layout, std::vector<sock_filter> filter,
              std::unique_ptr<OutputCollector> collector)
      : config(std::move(c)), cgroups(std::move(layout)), uids(config.uid_base, config.uid_slots, config.uid_lock_dir),
        seccomp(std::move(filter)), output(std::move(collector)) {}

  SandboxConfig config;
  CgroupLayout cgroups;
  UidRangePool uids;
  std::vector<sock_filter> seccomp;
  std::unique_ptr<OutputCollector> output;  // machines' stdout/stderr
  std::unique_ptr<NetworkSlots> network;     // null: loopback-only machines
  std::mutex mutex;
  std::set<std::string> live;  // ids of machines not yet reaped
};

class SandboxMachine final : public Machine {
 public:
  SandboxMachine(std::shared_ptr<SandboxHost> host, std::string id, pid_t pid, int pidfd, uid_t host_uid);
  ~SandboxMachine() override;  // kills and reaps if the owner did not

  const std::string& id() const override { return id_; }
  pid_t pid() const override { return pid_; }
  Result<UniqueFd> connect_agent() override;
  int exit_fd() const override { return pidfd_.get(); }
  void kill() override;
  MachineExit reap() override;
  std::string backend_name() const override { return "sandbox"; }
  Status set_background(bool background) override;
  std::optional<MachineNetworkCounters> network_counters() const override;
  Result<UniqueFd> open_machine_dir(const std::string& path) override;
  Result<UniqueFd> create_machine_file(const std::string& dir, const std::string& name) override;
  // The machine's address on its network slot (none without network).
  std::optional<std::uint32_t> network_address() const;

  // <state_dir>/<id>: the host side of /run/kindling.
  const std::string& run_dir() const { return run_dir_; }
  // Host uid (and gid) that uid 0 inside maps to.
  uid_t host_uid() const { return host_uid_; }
  // Path of a cgroup control file of this machine ("pids.max", ...).
  std::string cgroup_file(const std::string& name) const;
  // The last `max_bytes` (at most 64 KiB) the agent and Chromium wrote to
  // stdout/stderr; kept in host memory, never on disk.
  std::string agent_log_tail(std::size_t max_bytes = 4096) const;
  // How much they wrote in all.
  std::uint64_t agent_output_bytes() const;

 private:
  std::shared_ptr<SandboxHost> host_;
  std::string id_;
  std::string run_dir_;
  pid_t pid_;
  UniqueFd pidfd_;
  uid_t host_uid_;
  friend class SandboxBackend;
  std::shared_ptr<OutputTail> output_;
  std::atomic<int> net_slot_{-1};        // -1: none (or released after reap)
  NetworkCounters net_baseline_;          // slot counters when this machine started
  std::mutex reap_mutex_;
  std::mutex mutex_;  // guards exit_; held while resources are freed
  std::optional<MachineExit> exit_;
};

class SandboxBackend final : public MachineBackend {
 public:
  // Checks the config and the host (cgroups, agent binary) once.
  static Result<std::unique_ptr<SandboxBackend>> create(SandboxConfig config);
  ~SandboxBackend() override;

  std::string name() const override { return "sandbox"; }
  Result<std::unique_ptr<Machine>> start(const MachineSpec& spec) override;
  Result<int> reclaim_orphans() override;

  const SandboxConfig& config() const { return host_->config; }

 private:
  explicit SandboxBackend(std::shared_ptr<SandboxHost> host) : host_(std::move(host)) {}
  std::shared_ptr<SandboxHost> host_;
};

}  // namespace kindling::node
