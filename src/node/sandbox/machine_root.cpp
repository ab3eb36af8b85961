#include "node/sandbox/machine_root.hpp"

#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace kindling::node {
namespace {

constexpr std::uint64_t kReadOnly = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

// Device nodes cannot be created in a user namespace; the host's are bound.
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom", "tty"};

}  // namespace

const char* MachineRoot::keep(std::string s) {
  strings_.push_back(std::move(s));
  return strings_.back().c_str();
}

std::string MachineRoot::inside(const std::string& path) const { return root_ + path; }

void MachineRoot::mkdirs(const std::string& path) {
  std::string at;
  std::size_t pos = 1;
  while (pos <= path.size()) {
    std::size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    at = path.substr(0, next);
    pos = next + 1;
    if (at.empty() || std::find(made_dirs_.begin(), made_dirs_.end(), at) != made_dirs_.end()) continue;
    made_dirs_.push_back(at);
    steps_.push_back({.kind = RootStep::Kind::kMkdir, .target = keep(inside(at)), .mode = 0755});
  }
}

Status MachineRoot::add_host_entry(const std::string& host_path, const std::string& path_inside) {
  struct stat st{};
  if (::lstat(host_path.c_str(), &st) != 0) return ok_status();  // absent on this host: skip
  std::string parent = path_inside.substr(0, path_inside.rfind('/'));
  if (!parent.empty()) mkdirs(parent);
  if (S_ISLNK(st.st_mode)) {
    // Merged /usr (/bin -> usr/bin) and /etc/localtime: keep links as links,
    // so they resolve inside the machine exactly as on the host.
    char link[4096];
    ssize_t n = ::readlink(host_path.c_str(), link, sizeof link - 1);
    if (n < 0) return make_error("cannot read link " + host_path + ": " + std::strerror(errno));
    steps_.push_back({.kind = RootStep::Kind::kSymlink, .source = keep(std::string(link, static_cast<std::size_t>(n))),
                      .target = keep(inside(path_inside))});
    return ok_status();
  }
  if (S_ISDIR(st.st_mode)) {
    mkdirs(path_inside);
  } else {
    steps_.push_back({.kind = RootStep::Kind::kTouch, .target = keep(inside(path_inside))});
  }
  steps_.push_back({.kind = RootStep::Kind::kBind, .source = keep(host_path), .target = keep(inside(path_inside)),
                    .attr_set = kReadOnly});
  return ok_status();
}

Result<MachineRoot> MachineRoot::plan(const SandboxConfig& config, const std::string& new_root, int run_fd,
                                      int agent_fd, std::uint64_t scratch_bytes,
                                      const std::vector<HostDirBind>& host_dirs) {
  MachineRoot root;
  // The child mounts the root tmpfs and changes into it while it is still
  // host root; every step then works relative to it, so no host directory on
  // the way to the state dir needs permissions for the machine's uids.
  root.root_ = ".";
  root.new_root_ = root.keep(new_root);
  // uid=0,gid=0 are read in the machine's user namespace: its root owns /.
  root.root_options_ = root.keep("size=" + std::to_string(scratch_bytes) + ",mode=0755,uid=0,gid=0");
  using K = RootStep::Kind;

  for (const auto& path : config.readonly_binds) {
    if (path.empty() || path[0] != '/' || path == "/") return make_error("invalid read-only bind '" + path + "'");
    KINDLING_TRY(added, root.add_host_entry(config.system_root + path, path));
    (void)added;
  }
  root.mkdirs("/etc");
  for (const auto& entry : config.etc_entries) {
    if (entry.empty() || entry.find("..") != std::string::npos) return make_error("invalid /etc entry '" + entry + "'");
    // resolv.conf describes the host's network, not the system: it comes
    // from the host (or the backend's own for a NAT slot) even when the rest
    // of /etc comes from the image.
    std::string source = config.system_root + "/etc/" + entry;
    if (entry == "resolv.conf") source = config.resolv_conf.empty() ? "/etc/resolv.conf" : config.resolv_conf;
    KINDLING_TRY(added, root.add_host_entry(source, "/etc/" + entry));
    (void)added;
  }

  // /dev: a small tmpfs of its own (the agent, like any init, expects /dev
  // and /dev/shm to be mount points), read-only once populated.
  root.mkdirs("/dev");
  root.steps_.push_back({.kind = K::kMountTmpfs, .target = root.keep(root.inside("/dev")),
                         .data = "size=65536,nr_inodes=64,mode=0755"});
  for (const char* device : kDevices) {
    std::string host = std::string("/dev/") + device;
    root.steps_.push_back({.kind = K::kTouch, .target = root.keep(root.inside(host))});
    root.steps_.push_back({.kind = K::kBind, .source = root.keep(host), .target = root.keep(root.inside(host)),
                           .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC});
  }
  for (auto [link, to] : {std::pair{"/dev/fd", "/proc/self/fd"}, std::pair{"/dev/stdin", "/proc/self/fd/0"},
                          std::pair{"/dev/stdout", "/proc/self/fd/1"}, std::pair{"/dev/stderr", "/proc/self/fd/2"}}) {
    root.steps_.push_back({.kind = K::kSymlink, .source = to, .target = root.keep(root.inside(link))});
  }

  root.made_dirs_.push_back("/dev/shm");
  root.steps_.push_back({.kind = K::kMkdir, .target = root.keep(root.inside("/dev/shm")), .mode = 0755});
  root.steps_.push_back({.kind = K::kSetAttr, .target = root.keep(root.inside("/dev")),
                         .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC});
  // Chromium's shared memory: its own tmpfs, as large as the scratch area.
  root.steps_.push_back({.kind = K::kMountTmpfs, .target = root.keep(root.inside("/dev/shm")),
                         .data = root.keep("size=" + std::to_string(scratch_bytes) + ",mode=1777")});

  // Writable places: directories of the root tmpfs, each bound onto itself
  // so it stays writable after / turns read-only.
  struct Writable {
    const char* path;
    unsigned mode;
    int uid;
    int gid;
  };
  for (Writable w : {Writable{"/tmp", 01777, -1, -1},
                     Writable{"/home/browser", 0700, static_cast<int>(kBrowserUid), static_cast<int>(kBrowserGid)}}) {
    std::string path = w.path;
    root.mkdirs(path.substr(0, path.rfind('/')));
    root.made_dirs_.push_back(path);
    root.steps_.push_back({.kind = K::kMkdir, .target = root.keep(root.inside(path)), .mode = w.mode,
                           .uid = w.uid, .gid = w.gid});
    root.steps_.push_back({.kind = K::kBind, .source = root.keep(root.inside(path)),
                           .target = root.keep(root.inside(path)),
                           .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV});
  }
  root.mkdirs("/root");
  root.mkdirs("/proc");

  root.mkdirs("/run/kindling");
  root.steps_.push_back({.kind = K::kBind, .source = root.keep("/proc/self/fd/" + std::to_string(run_fd)),
                         .target = root.keep(root.inside("/run/kindling")),
                         .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC});

  root.mkdirs("/kindling");
  root.steps_.push_back({.kind = K::kTouch, .target = root.keep(root.inside("/kindling/agent"))});
  root.steps_.push_back({.kind = K::kBind, .source = root.keep("/proc/self/fd/" + std::to_string(agent_fd)),
                         .target = root.keep(root.inside("/kindling/agent")), .attr_set = kReadOnly});

  for (const auto& dir : host_dirs) {
    if (dir.inside.size() < 2 || dir.inside[0] != '/' || dir.inside.find("..") != std::string::npos)
      return make_error("invalid bind target '" + dir.inside + "'");
    root.mkdirs(dir.inside);
    root.steps_.push_back({.kind = K::kBind, .source = root.keep("/proc/self/fd/" + std::to_string(dir.fd)),
                           .target = root.keep(root.inside(dir.inside)), .attr_set = kReadOnly | MOUNT_ATTR_NOEXEC});
  }

  // proc must be mounted while the host's /proc is still visible: the kernel
  // refuses a new proc in a user namespace that cannot see a full one.
  root.steps_.push_back({.kind = K::kMountProc, .target = root.keep(root.inside("/proc"))});
  return root;
}

}  // namespace kindling::node
