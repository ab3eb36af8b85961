// How the namespace sandbox backend is set up on a host. Validated once by
// SandboxBackend's constructor checks in start(); immutable afterwards.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "node/network/egress_policy.hpp"

namespace kindling::node {

struct SandboxConfig {
  // Host path of the binary that becomes PID 1 (kindling-agent, or a test
  // probe). It appears read-only at /kindling/agent inside the machine.
  std::string agent_path;
  // Host directory holding one directory per machine: <state_dir>/<id>/ is
  // bound at /run/kindling inside, so the agent's socket shows up at
  // <state_dir>/<id>/agent.sock.
  std::string state_dir = "/var/lib/kindling/machines";
  // Where the machine's system directories come from: empty for the host's
  // own (development), or the directory where the guest image is mounted
  // (docs/image.md); readonly_binds and etc_entries are then read below it.
  std::string system_root;
  // Directories (or files) of the system root bound read-only at the same
  // path inside. Missing ones are skipped; symlinks (merged /usr) are
  // recreated as links.
  std::vector<std::string> readonly_binds = {"/usr", "/lib", "/lib64", "/bin", "/sbin"};
  // Parts of the system root's /etc bound read-only under /etc inside: what
  // glibc, fontconfig, TLS and Chromium read. Missing ones are skipped.
  std::vector<std::string> etc_entries = {
      "passwd", "group", "nsswitch.conf", "hosts", "host.conf", "resolv.conf",
      "localtime", "timezone", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
      "fonts", "ssl", "ca-certificates", "ca-certificates.conf", "alternatives",
      "chromium", "chromium.d", "mime.types", "os-release", "machine-id",
      "gtk-3.0", "xdg"};
  // Each machine owns uid/gid range [uid_base + slot*65536, +65536) on the
  // host, mapped to 0..65535 inside. Slots are reused after reap.
  uid_t uid_base = 1000000;
  std::uint32_t uid_slots = 1024;
  // Host-wide claims on uid slots (one lock file per slot), shared by every
  // server on the host. Empty: claims are per process (tests only).
  std::string uid_lock_dir = "/run/kindling/uid-slots";
  // What the agent is told (passed after /kindling/agent).
  std::string chromium_path = "/usr/lib/chromium/chromium";
  std::vector<std::string> agent_args;  // appended after the standard ones
  // When false, the agent gets only agent_args (a test probe, for example).
  bool standard_agent_args = true;
  // Name of the cgroup under each hierarchy root that holds machine cgroups.
  std::string cgroup_parent = "kindling";
  // Where cgroups are mounted; /sys/fs/cgroup on every ordinary host.
  std::string cgroup_root = "/sys/fs/cgroup";
  // Per-machine egress (docs/network.md): a veth into a host-owned network
  // namespace, NAT and the default-deny policy. Unset: the machine's network
  // namespace has only loopback.
  std::optional<EgressConfig> network;
  // Host file bound at /etc/resolv.conf instead of the host's own (set by the
  // backend when network is on: the machines' resolver is the pool's DNS address).
  std::string resolv_conf;
};

}  // namespace kindling::node
