// A stand-in for kindling-agent in the sandbox tests: PID 1 of a machine that
// listens where the agent would and answers one command per connection with
// JSON facts about the world it sees, so the tests can assert isolation from
// outside. Commands (one line):
//   facts              pid, uids, hostname, mounts, processes, interfaces, ...
//   write PATH         create PATH and write to it
//   read PATH          read PATH
//   try NAME           attempt a syscall the seccomp policy decides on
//   spawn              fork a child that sleeps until killed
//   symlink T L        replace L with a symlink to T
//   exit CODE          exit PID 1 with CODE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

using nlohmann::json;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json list_dir(const std::string& path, bool numeric_only) {
  json names = json::array();
  if (DIR* d = opendir(path.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      if (numeric_only && name.find_first_not_of("0123456789") != std::string::npos) continue;
      names.push_back(name);
    }
    closedir(d);
  }
  return names;
}

json facts() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  json interfaces = json::array();
  if (struct if_nameindex* list = if_nameindex()) {
    for (auto* i = list; i->if_index; ++i) interfaces.push_back(i->if_name);
    if_freenameindex(list);
  }
  bool lo_up = false;
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq req{};
  std::strcpy(req.ifr_name, "lo");
  if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &req) == 0) lo_up = (req.ifr_flags & IFF_UP) != 0;
  if (s >= 0) close(s);
  std::string status = slurp("/proc/self/status");
  auto field = [&](const std::string& name) {
    auto at = status.find(name + ":");
    if (at == std::string::npos) return std::string();
    auto end = status.find('\n', at);
    std::string v = status.substr(at + name.size() + 1, end - at - name.size() - 1);
    v.erase(0, v.find_first_not_of(" \t"));
    return v;
  };
  return {{"pid", getpid()},          {"uid", getuid()},
          {"gid", getgid()},          {"hostname", host},
          {"mounts", slurp("/proc/self/mounts")},
          {"procs", list_dir("/proc", true)},
          {"interfaces", interfaces}, {"lo_up", lo_up},
          {"cgroup", slurp("/proc/self/cgroup")},
          {"seccomp", field("Seccomp")}, {"no_new_privs", field("NoNewPrivs")},
          {"root_entries", list_dir("/", false)}};
}

json result(long rc) { return {{"rc", rc}, {"errno", rc < 0 ? errno : 0}}; }

json try_syscall(const std::string& name) {
  if (name == "mount") {
    mkdir("/tmp/probe-mnt", 0755);
    return result(mount("none", "/tmp/probe-mnt", "tmpfs", 0, nullptr));
  }
  if (name == "umount") return result(umount2("/proc", MNT_DETACH));
  if (name == "ptrace") return result(ptrace(PTRACE_TRACEME, 0, nullptr, nullptr));
  if (name == "bpf") {
    union bpf_attr attr{};
    return result(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
  }
  if (name == "keyctl") return result(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
  if (name == "perf_event_open") return result(syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0));
  if (name == "unshare_user") {
    // Chromium's own sandbox: new user, pid and net namespaces in a child.
    pid_t child = fork();
    if (child == 0) _exit(unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET) == 0 ? 0 : errno);
    int st = 0;
    waitpid(child, &st, 0);
    return {{"rc", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1}, {"errno", WEXITSTATUS(st)}};
  }
  if (name == "chroot") {
    pid_t child = fork();
    if (child == 0) _exit(chroot("/proc") == 0 ? 0 : errno);
    int st = 0;
    waitpid(child, &st, 0);
    return {{"rc", WEXITSTATUS(st) == 0 ? 0 : -1}, {"errno", WEXITSTATUS(st)}};
  }
  return {{"error", "unknown syscall " + name}};
}

json handle(const std::string& line) {
  std::string cmd = line.substr(0, line.find(' '));
  std::string arg = line.find(' ') == std::string::npos ? "" : line.substr(line.find(' ') + 1);
  if (cmd == "facts") return facts();
  if (cmd == "write") {
    int fd = open(arg.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return {{"ok", false}, {"errno", errno}};
    bool ok = write(fd, "probe", 5) == 5;
    close(fd);
    return {{"ok", ok}, {"errno", 0}};
  }
  if (cmd == "read") {
    int fd = open(arg.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {{"ok", false}, {"errno", errno}};
    close(fd);
    return {{"ok", true}, {"content", slurp(arg)}};
  }
  if (cmd == "try") return try_syscall(arg);
  if (cmd == "symlink") {  // "symlink TARGET LINK": replace LINK
    std::string target = arg.substr(0, arg.find(' '));
    std::string link = arg.substr(arg.find(' ') + 1);
    unlink(link.c_str());
    return {{"ok", symlink(target.c_str(), link.c_str()) == 0}, {"errno", errno}};
  }
  if (cmd == "spew") {  // "spew MIB": write that much to stderr, ending with a marker line
    std::string chunk(64 * 1024, 'x');
    chunk.back() = '\n';
    long mib = std::stol(arg);
    for (long i = 0; i < mib * 16; ++i) {
      if (write(2, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) return {{"ok", false}};
    }
    const char marker[] = "probe: spew done\n";
    return {{"ok", write(2, marker, sizeof marker - 1) == sizeof marker - 1}};
  }
  if (cmd == "spawn") {
    pid_t child = fork();
    if (child == 0) {
      // Drop the connection and listener, or the host never sees EOF.
      closefrom(3);
      for (;;) pause();
    }
    return {{"pid", child}};
  }
  return {{"error", "unknown command " + cmd}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen_at = "unix:/run/kindling/agent.sock";
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--listen") listen_at = argv[i + 1];
  }
  std::string path = listen_at.substr(listen_at.find(":") + 1);
  int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  unlink(path.c_str());
  if (bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(server, 16) != 0) {
    perror("probe: listen");
    return 2;
  }
  for (;;) {
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    pollfd pfd{server, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    int conn = accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    std::string line;
    char c;
    while (read(conn, &c, 1) == 1 && c != '\n') line += c;
    if (line.rfind("exit ", 0) == 0) {
      close(conn);
      return std::stoi(line.substr(5));
    }
    std::string reply = handle(line).dump() + "\n";
    std::size_t off = 0;
    while (off < reply.size()) {
      ssize_t n = write(conn, reply.data() + off, reply.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    close(conn);
  }
}
