// The machine layer's one interface (DESIGN.md "The machine layer"): a
// machine is an isolated place where kindling-agent runs as PID 1. Two
// backends implement it: the namespace sandbox (src/node/sandbox) and, later,
// the microVM (kindling-vmm). The control layer only sees this header.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kindling::node {

// An unpacked Chrome extension on the host, shown read-only inside the
// machine at /kindling/extensions/<name> and loaded by its Chromium.
struct MachineExtension {
  std::string name;      // [a-z0-9]{1,64}; the folder inside
  std::string host_dir;  // absolute
};
inline constexpr std::size_t kMaxMachineExtensions = 16;
inline constexpr const char* kMachineExtensionsDir = "/kindling/extensions";
// Where a saved profile's files are shown (read-only) for the agent to copy
// into the browser's user-data-dir (agent --profile-seed).
inline constexpr const char* kMachineProfileSeedDir = "/kindling/profile-seed";
// The browser's user-data-dir inside every machine (agent --user-data-dir).
inline constexpr const char* kMachineUserDataDir = "/home/browser/profile";

// What a machine is given. Validated by the caller; backends re-check bounds.
struct MachineSpec {
  std::string id;  // unique, [a-z0-9-]{1,64}; names cgroups and directories
  std::uint64_t memory_limit_bytes = 2ull << 30;
  std::uint32_t pids_limit = 2048;
  double cpu_limit = 2.0;                   // cores (CFS quota / cpu.max)
  std::uint64_t scratch_bytes = 1ull << 30;  // RAM overlay (tmpfs) size
  bool background = false;                   // start at the lowest CPU weight
  // Chromium is launched with these (so only a cold start can have them).
  std::vector<MachineExtension> extensions;
  // A host folder holding a saved profile to start the browser with
  // (absolute; empty: none). Cold starts only, like extensions.
  std::string profile_seed_dir;
};

// Bytes a machine's network interface moved since the machine started.
struct MachineNetworkCounters {
  std::uint64_t rx_bytes = 0;
  std::uint64_t tx_bytes = 0;
};

// How a machine ended.
struct MachineExit {
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string describe() const;
};

class Machine {
 public:
  virtual ~Machine() = default;

  virtual const std::string& id() const = 0;
  // Host-side pid of the machine's root process (the agent, or the VMM).
  virtual pid_t pid() const = 0;

  // Opens a new stream to the agent's listener, ready for a protocol
  // preamble (agent_protocol.hpp). Blocking but fast (a local connect).
  virtual Result<UniqueFd> connect_agent() = 0;

  // A file descriptor that becomes readable once the machine has ended
  // (a pidfd). Owned by the machine.
  virtual int exit_fd() const = 0;

  // Kills every process of the machine at once. Idempotent; safe to call
  // after the machine ended.
  virtual void kill() = 0;

  // Reaps the machine once exit_fd() is readable (or after kill()), frees
  // every resource it held (cgroups, directories, uid range) and reports how
  // it ended. Blocks until the machine is gone. Idempotent.
  virtual MachineExit reap() = 0;

  // Moves the machine between the lowest CPU weight (a standby being made,
  // so refills never starve running sessions) and the normal one.
  virtual Status set_background(bool background) = 0;

  // Whether the sandbox could run Chromium's own sandbox (set by the agent's
  // report; the backend only records what it learned at start).
  virtual std::string backend_name() const = 0;

  // Its network counters; none when the machine has no network (loopback only).
  virtual std::optional<MachineNetworkCounters> network_counters() const { return std::nullopt; }

  // A directory inside the machine (an absolute path there), opened for the
  // host to list and read downloads from and write uploads to. Resolved
  // inside the machine's root without following any link, since the machine
  // may have planted one.
  virtual Result<UniqueFd> open_machine_dir(const std::string& path) {
    (void)path;
    return make_error(backend_name() + " machines do not expose their files to the host", "unsupported");
  }
  // Creates a new file `name` in a directory of the machine, owned by the
  // machine's browser user, opened for writing; never replaces a file.
  virtual Result<UniqueFd> create_machine_file(const std::string& dir, const std::string& name) {
    (void)dir;
    (void)name;
    return make_error(backend_name() + " machines do not expose their files to the host", "unsupported");
  }
};

class MachineBackend {
 public:
  virtual ~MachineBackend() = default;
  virtual std::string name() const = 0;
  // Starts a machine whose agent begins launching Chromium immediately.
  virtual Result<std::unique_ptr<Machine>> start(const MachineSpec& spec) = 0;
  // On server start: kills and frees machines left behind by an earlier
  // process (crash, kill -9). Returns how many it found.
  virtual Result<int> reclaim_orphans() = 0;
};

}  // namespace kindling::node
