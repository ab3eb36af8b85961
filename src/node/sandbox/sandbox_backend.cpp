#include "node/sandbox/sandbox_backend.hpp"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/browser_seccomp.hpp"
#include "common/log.hpp"
#include "node/sandbox/machine_child.hpp"
#include "node/sandbox/machine_root.hpp"

namespace kindling::node {
namespace {

namespace fs = std::filesystem;

// The shared, always-empty host directory each machine mounts its root
// tmpfs on, inside its own mount namespace.
constexpr const char* kNewRootDir = ".mnt";
constexpr int kStartTimeoutMs = 30000;
constexpr std::size_t kChildStackBytes = 256 * 1024;

std::string errno_text(int err) { return std::strerror(err); }

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

Status check_spec(const MachineSpec& spec) {
  if (!valid_id(spec.id)) return make_error("machine id '" + spec.id + "' must match [a-z0-9-]{1,64}", "invalid");
  if (spec.memory_limit_bytes < (16ull << 20)) return make_error("memory limit below 16 MiB", "invalid");
  if (spec.pids_limit < 8) return make_error("pids limit below 8", "invalid");
  if (!(spec.cpu_limit >= 0.01 && spec.cpu_limit <= 1024)) return make_error("cpu limit out of range", "invalid");
  if (spec.scratch_bytes < (1ull << 20)) return make_error("scratch size below 1 MiB", "invalid");
  if (spec.extensions.size() > kMaxMachineExtensions) return make_error("more than 16 extensions", "invalid");
  for (std::size_t i = 0; i < spec.extensions.size(); ++i) {
    const auto& e = spec.extensions[i];
    bool name_ok = !e.name.empty() && e.name.size() <= 64 &&
                   e.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") == std::string::npos;
    if (!name_ok) return make_error("extension name '" + e.name + "' must match [a-z0-9]{1,64}", "invalid");
    if (e.host_dir.empty() || e.host_dir[0] != '/')
      return make_error("extension dir must be an absolute path", "invalid");
    for (std::size_t j = 0; j < i; ++j)
      if (spec.extensions[j].name == e.name) return make_error("extension '" + e.name + "' given twice", "invalid");
  }
  if (!spec.profile_seed_dir.empty() && spec.profile_seed_dir[0] != '/')
    return make_error("profile seed dir must be an absolute path", "invalid");
  return ok_status();
}

Status write_text(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return make_error("cannot open " + path + ": " + errno_text(errno));
  ssize_t n = ::write(fd, text.data(), text.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) return make_error("cannot write " + path + ": " + errno_text(err));
  return ok_status();
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) spdlog::warn("cannot remove {}: {}", path, ec.message());
}

// What a start owns until it hands everything to a SandboxMachine; undoes
// whatever was done if the start fails half way.
struct StartUndo {
  SandboxHost* host;
  std::string id;
  std::optional<uid_t> uid;
  std::optional<unsigned> net_slot;
  std::string run_dir;
  bool cgroup_made = false;
  pid_t pid = -1;
  bool armed = true;

  ~StartUndo() {
    if (!armed) return;
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      int status;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    if (cgroup_made) {
      auto st = host->cgroups.destroy(id);
      if (!st) spdlog::warn("machine {}: {}", id, st.error().message);
    }
    if (!run_dir.empty()) remove_tree(run_dir);
    if (uid) host->uids.release(*uid);
    if (net_slot) host->network->release(*net_slot);
    std::lock_guard lock(host->mutex);
    host->live.erase(id);
  }
};

}  // namespace

// ---------------------------------------------------------------- backend

Result<std::unique_ptr<SandboxBackend>> SandboxBackend::create(SandboxConfig config) {
  if (config.agent_path.empty() || ::access(config.agent_path.c_str(), X_OK) != 0) {
    return make_error("agent binary '" + config.agent_path + "' is not executable");
  }
  if (config.state_dir.empty() || config.state_dir[0] != '/') {
    return make_error("state dir '" + config.state_dir + "' must be an absolute path");
  }
  if (config.uid_slots == 0 ||
      static_cast<std::uint64_t>(config.uid_base) + std::uint64_t{config.uid_slots} * kIdsPerMachine > 0xFFFFFFFEull ||
      config.uid_base < kIdsPerMachine) {
    return make_error("uid range base/slots out of bounds");
  }
  std::error_code ec;
  if (!config.system_root.empty() &&
      (config.system_root[0] != '/' || config.system_root.back() == '/' || !fs::is_directory(config.system_root + "/usr", ec))) {
    return make_error("system root '" + config.system_root + "' must be an absolute path to a directory with /usr");
  }
  fs::create_directories(fs::path(config.state_dir) / kNewRootDir, ec);
  if (ec) return make_error("cannot create state dir " + config.state_dir + ": " + ec.message());
  std::unique_ptr<NetworkSlots> network;
  if (config.network) {
    // The machines' resolver is the pool's DNS address, redirected by the
    // ruleset to the upstream; the host's resolv.conf may name an address
    // a machine cannot reach.
    config.resolv_conf = config.state_dir + "/.resolv.conf";
    {
      std::ofstream out(config.resolv_conf, std::ios::trunc);
      out << "# kindling: machines' DNS, redirected to the configured upstream\n";
      if (config.network->dns_upstream) out << "nameserver " << ipv4_to_string(dns_address(*config.network)) << "\n";
      if (!out) return make_error("cannot write " + config.resolv_conf);
    }
    ::chmod(config.resolv_conf.c_str(), 0644);
    KINDLING_TRY(slots, NetworkSlots::create(*config.network));
    network = std::move(slots);
  }
  KINDLING_TRY(layout, CgroupLayout::prepare(config.cgroup_root, config.cgroup_parent));
  KINDLING_TRY(filter, compile_browser_seccomp());
  KINDLING_TRY(collector, OutputCollector::create());
  auto host = std::make_shared<SandboxHost>(std::move(config), std::move(layout), std::move(filter),
                                            std::move(collector));
  host->network = std::move(network);
  return std::unique_ptr<SandboxBackend>(new SandboxBackend(std::move(host)));
}

SandboxBackend::~SandboxBackend() {
  // Leaves the parent cgroups in place while any machine still lives.
  std::lock_guard lock(host_->mutex);
  if (host_->live.empty()) host_->cgroups.remove_parents();
}

Result<std::unique_ptr<Machine>> SandboxBackend::start(const MachineSpec& spec) {
  KINDLING_TRY(checked, check_spec(spec));
  (void)checked;
  SandboxHost& host = *host_;
  const SandboxConfig& config = host.config;
  {
    std::lock_guard lock(host.mutex);
    if (!host.live.insert(spec.id).second) return make_error("machine " + spec.id + " already exists", "conflict");
  }
  StartUndo undo{&host, spec.id};

  undo.uid = host.uids.acquire();
  if (!undo.uid) return make_error("all " + std::to_string(config.uid_slots) + " uid ranges are in use", "exhausted");
  const uid_t uid = *undo.uid;

  int netns_fd = -1;
  if (host.network) {
    KINDLING_TRY(slot, host.network->acquire());
    undo.net_slot = slot;
    netns_fd = host.network->netns_fd(slot);
  }

  // <state>/<id>: owned by the machine's root, so the agent can create its
  // socket there; nobody else on the host but root can enter it.
  std::string run_dir = config.state_dir + "/" + spec.id;
  remove_tree(run_dir);  // a leftover of a crashed node: never reuse it
  if (::mkdir(run_dir.c_str(), 0700) != 0) return make_error("cannot create " + run_dir + ": " + errno_text(errno));
  undo.run_dir = run_dir;
  if (::chown(run_dir.c_str(), uid, uid) != 0) return make_error("cannot chown " + run_dir + ": " + errno_text(errno));
  // stdout/stderr: a pipe whose bounded tail the host keeps in memory.
  KINDLING_TRY(output, host.output->open_source());
  UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd agent_fd(::open(config.agent_path.c_str(), O_PATH | O_CLOEXEC));
  if (!null_fd.valid() || !agent_fd.valid()) {
    return make_error("cannot open agent binary " + config.agent_path + ": " + errno_text(errno));
  }

  MachineCgroup cgroup(host.cgroups, spec.id);
  undo.cgroup_made = true;
  KINDLING_TRY(limited, cgroup.create(spec));
  (void)limited;

  // Placeholder: reserves the descriptor number the child reopens run_dir at.
  UniqueFd run_fd(::open(run_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!run_fd.valid()) return make_error("cannot open " + run_dir + ": " + errno_text(errno));
  // Likewise a placeholder per extension; the child reopens each there, as
  // the data dir need not be traversable by the machine's uids.
  std::vector<UniqueFd> extension_fds;
  std::vector<HostDirBind> host_dirs;
  std::vector<const char*> host_dir_paths;
  std::vector<int> host_dir_fds;
  for (const auto& e : spec.extensions) {
    UniqueFd fd(::open(e.host_dir.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return make_error("cannot open extension dir " + e.host_dir + ": " + errno_text(errno));
    host_dirs.push_back({fd.get(), std::string(kMachineExtensionsDir) + "/" + e.name});
    host_dir_paths.push_back(e.host_dir.c_str());
    host_dir_fds.push_back(fd.get());
    extension_fds.push_back(std::move(fd));
  }
  if (!spec.profile_seed_dir.empty()) {
    UniqueFd fd(::open(spec.profile_seed_dir.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return make_error("cannot open profile seed " + spec.profile_seed_dir + ": " + errno_text(errno));
    host_dirs.push_back({fd.get(), kMachineProfileSeedDir});
    host_dir_paths.push_back(spec.profile_seed_dir.c_str());
    host_dir_fds.push_back(fd.get());
    extension_fds.push_back(std::move(fd));
  }
  KINDLING_TRY(root, MachineRoot::plan(config, config.state_dir + "/" + kNewRootDir, run_fd.get(), agent_fd.get(),
                                       spec.scratch_bytes, host_dirs));

  std::vector<std::string> args = {"/kindling/agent"};
  if (config.standard_agent_args) {
    for (const char* a : {"--listen", "unix:/run/kindling/agent.sock", "--chromium"}) args.emplace_back(a);
    args.push_back(config.chromium_path);
    for (const char* a : {"--user-data-dir", "/home/browser/profile"}) args.emplace_back(a);
    for (const char* a : {"--browser-uid", "--browser-gid"}) {
      args.emplace_back(a);
      args.push_back(std::to_string(kMachineBrowserUid));
    }
    for (const auto& dir : host_dirs) {
      args.emplace_back(dir.inside == kMachineProfileSeedDir ? "--profile-seed" : "--extension");
      args.push_back(dir.inside);
    }
  }
  args.insert(args.end(), config.agent_args.begin(), config.agent_args.end());
  std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root", "LANG=C.UTF-8",
                                  "KINDLING_MACHINE_ID=" + spec.id};
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int release[2], status[2];
  if (::pipe2(release, O_CLOEXEC) != 0) return make_error("pipe: " + errno_text(errno));
  UniqueFd release_r(release[0]), release_w(release[1]);
  if (::pipe2(status, O_CLOEXEC) != 0) return make_error("pipe: " + errno_text(errno));
  UniqueFd status_r(status[0]), status_w(status[1]);

  MachineChildPlan plan;
  plan.release_fd = release_r.get();
  plan.status_fd = status_w.get();
  plan.stdin_fd = null_fd.get();
  plan.log_fd = output.write_end.get();
  plan.agent_host_path = config.agent_path.c_str();
  plan.agent_fd = agent_fd.get();
  plan.run_dir_host_path = run_dir.c_str();
  plan.run_fd = run_fd.get();
  plan.host_dir_paths = host_dir_paths.data();
  plan.host_dir_fds = host_dir_fds.data();
  plan.host_dir_count = host_dir_fds.size();
  plan.root_tmpfs_options = root.root_tmpfs_options();
  plan.steps = root.steps().data();
  plan.step_count = root.steps().size();
  plan.new_root = root.new_root();
  plan.hostname = "kindling";
  plan.seccomp = host.seccomp.data();
  plan.seccomp_len = host.seccomp.size();
  plan.exec_path = "/kindling/agent";
  plan.argv = argv.data();
  plan.envp = envp.data();

  void* stack = ::mmap(nullptr, kChildStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return make_error("cannot allocate child stack: " + errno_text(errno));
  // No signal handler may run in the child before exec: block all around clone.
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  int pidfd = -1;
  pid_t pid = -1;
  int clone_errno = 0;
  const int common_flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD | SIGCHLD;
  if (netns_fd < 0) {
    pid = ::clone(machine_child_main, static_cast<char*>(stack) + kChildStackBytes, common_flags | CLONE_NEWNET, &plan,
                  &pidfd);
    clone_errno = errno;
  } else {
    // The child must be born in the slot's namespace, which belongs to the
    // host's user namespace: a child already in its own user namespace could
    // not join it. A short-lived thread joins it and clones; the calling
    // thread's namespaces never change. It inherits the all-blocked mask.
    std::thread cloner([&] {
      if (::setns(netns_fd, CLONE_NEWNET) != 0) {
        clone_errno = errno;
        return;
      }
      pid = ::clone(machine_child_main, static_cast<char*>(stack) + kChildStackBytes, common_flags, &plan, &pidfd);
      clone_errno = errno;
    });
    cloner.join();
  }
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  ::munmap(stack, kChildStackBytes);
  if (pid < 0) return make_error("clone: " + errno_text(clone_errno));
  undo.pid = pid;
  UniqueFd owned_pidfd(pidfd);
  release_r.reset();
  status_w.reset();

  // Place the child and give it its ids before it does anything.
  KINDLING_TRY(placed, cgroup.attach(pid));
  (void)placed;
  const std::string map = "0 " + std::to_string(uid) + " " + std::to_string(kIdsPerMachine) + "\n";
  KINDLING_TRY(uids_mapped, write_text("/proc/" + std::to_string(pid) + "/uid_map", map));
  (void)uids_mapped;
  KINDLING_TRY(gids_mapped, write_text("/proc/" + std::to_string(pid) + "/gid_map", map));
  (void)gids_mapped;
  char go = 1;
  if (::write(release_w.get(), &go, 1) != 1) return make_error("cannot release machine child: " + errno_text(errno));
  release_w.reset();

  // EOF on the status pipe means execve succeeded (it is close-on-exec).
  std::string failure;
  pollfd pfd{status_r.get(), POLLIN, 0};
  int ready = ::poll(&pfd, 1, kStartTimeoutMs);
  if (ready == 0) return make_error("machine " + spec.id + " did not reach execve in 30 s");
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(status_r.get(), buf, sizeof buf);
    if (n > 0) {
      failure.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  if (!failure.empty()) return make_error("machine " + spec.id + " failed to start: " + failure);

  undo.armed = false;
  spdlog::info("machine {}: started, pid {}, host uid {}", spec.id, pid, uid);
  auto machine = std::make_unique<SandboxMachine>(host_, spec.id, pid, owned_pidfd.release(), uid);
  machine->output_ = std::move(output.tail);
  if (undo.net_slot) {
    machine->net_slot_ = static_cast<int>(*undo.net_slot);
    machine->net_baseline_ = host.network->counters(*undo.net_slot);
    undo.net_slot.reset();
  }
  return std::unique_ptr<Machine>(std::move(machine));
}

Result<int> SandboxBackend::reclaim_orphans() {
  SandboxHost& host = *host_;
  std::set<std::string> found;
  for (auto& id : host.cgroups.existing_machines()) found.insert(std::move(id));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(host.config.state_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (!name.empty() && name[0] != '.') found.insert(name);
  }
  int reclaimed = 0;
  std::string failures;
  for (const auto& id : found) {
    {
      std::lock_guard lock(host.mutex);
      if (host.live.count(id)) continue;  // ours, alive
    }
    // The cgroup holds every process of the orphan, wherever it was reparented.
    auto st = host.cgroups.destroy(id);
    if (!st) failures += " " + st.error().message;
    remove_tree(host.config.state_dir + "/" + id);
    spdlog::info("machine {}: reclaimed orphan", id);
    ++reclaimed;
  }
  if (!failures.empty()) return make_error("reclaiming orphans:" + failures);
  return reclaimed;
}

// ---------------------------------------------------------------- machine

SandboxMachine::SandboxMachine(std::shared_ptr<SandboxHost> host, std::string id, pid_t pid, int pidfd,
                               uid_t host_uid)
    : host_(std::move(host)),
      id_(std::move(id)),
      run_dir_(host_->config.state_dir + "/" + id_),
      pid_(pid),
      pidfd_(pidfd),
      host_uid_(host_uid) {}

SandboxMachine::~SandboxMachine() {
  kill();
  reap();
}

Result<UniqueFd> SandboxMachine::connect_agent() {
  // agent.sock lives in a directory the machine controls: it could be a
  // symlink to a host socket. Pin the inode without following links, check
  // it is a socket, and connect to exactly that inode.
  std::string path = run_dir_ + "/agent.sock";
  UniqueFd pinned(::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!pinned.valid()) {
    return make_error("machine " + id_ + ": agent socket not there yet: " + errno_text(errno), "unavailable");
  }
  struct stat st{};
  if (::fstat(pinned.get(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return make_error("machine " + id_ + ": agent.sock is not a socket", "unavailable");
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return make_error("socket: " + errno_text(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string via = "/proc/self/fd/" + std::to_string(pinned.get());
  std::memcpy(addr.sun_path, via.c_str(), via.size() + 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return make_error("machine " + id_ + ": cannot connect to agent: " + errno_text(errno), "unavailable");
  }
  return fd;
}

Status SandboxMachine::set_background(bool background) {
  std::lock_guard lock(mutex_);
  if (exit_) return make_error("machine " + id_ + " has ended");
  return MachineCgroup(host_->cgroups, id_).set_background(background);
}

void SandboxMachine::kill() {
  std::lock_guard lock(mutex_);
  if (exit_) return;
  // SIGKILL to the pid namespace's init takes the whole namespace with it;
  // the cgroup kill catches anything that could have escaped it.
  ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  MachineCgroup(host_->cgroups, id_).kill();
}

MachineExit SandboxMachine::reap() {
  // One reaper at a time; the wait itself runs without mutex_, so kill()
  // from another thread is never stuck behind a reap of a live machine.
  std::lock_guard reaper(reap_mutex_);
  {
    std::lock_guard lock(mutex_);
    if (exit_) return *exit_;
  }
  MachineExit result;
  siginfo_t info{};
  int rc;
  for (;;) {
    rc = ::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED);
    if (rc == 0 || errno == EINTR) {
      if (rc == 0) break;
      continue;
    }
    // Watchers (asio) may have made the shared pidfd non-blocking: wait for
    // the exit explicitly, then collect it.
    if (errno != EAGAIN) break;
    pollfd pfd{pidfd_.get(), POLLIN, 0};
    ::poll(&pfd, 1, -1);
  }
  if (rc != 0) spdlog::warn("machine {}: waitid: {}", id_, errno_text(errno));
  if (rc == 0) {
    if (info.si_code == CLD_EXITED) {
      result.exit_code = info.si_status;
    } else {
      result.signal = info.si_status;
    }
  }
  // Under mutex_: once the id and uid range are free, a later machine may
  // reuse them, and kill() on this object must not reach it.
  std::lock_guard lock(mutex_);
  auto st = host_->cgroups.destroy(id_);
  if (!st) spdlog::warn("machine {}: {}", id_, st.error().message);
  remove_tree(run_dir_);
  host_->uids.release(host_uid_);
  // Every process of the machine is gone: nothing of it is left in the slot.
  if (int slot = net_slot_.exchange(-1); slot >= 0) host_->network->release(static_cast<unsigned>(slot));
  {
    std::lock_guard host_lock(host_->mutex);
    host_->live.erase(id_);
  }
  spdlog::info("machine {}: reaped, {}", id_, result.describe());
  exit_ = result;
  return result;
}

std::optional<MachineNetworkCounters> SandboxMachine::network_counters() const {
  int slot = net_slot_.load();
  if (slot < 0 || !host_->network) return std::nullopt;
  auto now = host_->network->counters(static_cast<unsigned>(slot));
  // Counters of a slot only grow; a machine sees what moved since it started.
  return MachineNetworkCounters{now.rx_bytes - std::min(now.rx_bytes, net_baseline_.rx_bytes),
                                now.tx_bytes - std::min(now.tx_bytes, net_baseline_.tx_bytes)};
}

std::optional<std::uint32_t> SandboxMachine::network_address() const {
  int slot = net_slot_.load();
  if (slot < 0 || !host_->network) return std::nullopt;
  return host_->network->machine_address(static_cast<unsigned>(slot));
}

std::string SandboxMachine::cgroup_file(const std::string& name) const {
  return MachineCgroup(host_->cgroups, id_).file(name);
}

std::string SandboxMachine::agent_log_tail(std::size_t max_bytes) const {
  return output_ ? output_->tail(max_bytes) : std::string();
}

std::uint64_t SandboxMachine::agent_output_bytes() const { return output_ ? output_->total_bytes() : 0; }

}  // namespace kindling::node
