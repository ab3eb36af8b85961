#include "image/tool_run.hpp"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace kindling::image {
namespace {

constexpr const char* kSearchPath[] = {"/usr/sbin", "/usr/bin", "/sbin", "/bin"};

std::string tail_of(const std::string& path, std::size_t max_lines) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
    if (lines.size() > max_lines) lines.erase(lines.begin());
  }
  std::string out;
  for (auto& l : lines) out += "\n  | " + l;
  return out;
}

}  // namespace

std::string find_tool(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : std::string();
  for (const char* dir : kSearchPath) {
    std::string path = std::string(dir) + "/" + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return {};
}

Result<std::string> run_tool(const ToolRun& run) {
  if (run.argv.empty()) return make_error("run_tool: empty argv");
  const std::string& name = run.argv[0];
  std::string path = find_tool(name);
  if (path.empty()) return make_error(name + " not found in /usr/sbin:/usr/bin:/sbin:/bin (scripts/install-deps.sh installs it)");

  // Everything the child needs is built before fork.
  std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", "HOME=/root"};
  env.insert(env.end(), run.env.begin(), run.env.end());
  std::vector<char*> argv, envp;
  std::vector<std::string> args = run.argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out_pipe[2] = {-1, -1};
  if (run.capture_stdout && ::pipe2(out_pipe, O_CLOEXEC) != 0) return make_error("pipe: " + std::string(std::strerror(errno)));
  int err_fd = -1;
  if (!run.stderr_path.empty()) {
    err_fd = ::open(run.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (err_fd < 0) return make_error("cannot open " + run.stderr_path + ": " + std::strerror(errno));
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) return make_error("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    // Dies with the build: kill -9 of kindling takes the tool with it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    if (run.private_mounts) {
      // Its own mount namespace (the chroot's /proc, /sys, /dev vanish with
      // it) and its own pid namespace: PDEATHSIG reaches only a direct
      // child, but mmdebstrap forks workers; when the namespace's init dies
      // the kernel kills every process in it, so nothing outlives the build.
      if (::unshare(CLONE_NEWNS | CLONE_NEWPID) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        ::_exit(126);
      pid_t init = ::fork();
      if (init < 0) ::_exit(126);
      if (init > 0) {
        // The middle process only relays the tool's exit status.
        int st = 0;
        while (::waitpid(init, &st, 0) < 0 && errno == EINTR) {
        }
        ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
      }
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      // A /proc of the new pid namespace, in the private mount namespace.
      if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) ::_exit(126);
    }
    if (!run.cwd.empty() && ::chdir(run.cwd.c_str()) != 0) ::_exit(125);
    ::dup2(null_fd, 0);
    if (run.capture_stdout) ::dup2(out_pipe[1], 1);
    else if (err_fd >= 0) ::dup2(err_fd, 1);
    if (err_fd >= 0) ::dup2(err_fd, 2);
    ::execve(path.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  if (null_fd >= 0) ::close(null_fd);
  if (err_fd >= 0) ::close(err_fd);
  std::string output;
  if (run.capture_stdout) {
    ::close(out_pipe[1]);
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
      if (n > 0) output.append(buf, static_cast<std::size_t>(n));
      else if (n < 0 && errno == EINTR) continue;
      else break;
    }
    ::close(out_pipe[0]);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return output;
  std::string why = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                      : "signal " + std::to_string(WTERMSIG(status));
  std::string msg = name + " failed (" + why + ")";
  if (!run.stderr_path.empty()) msg += "; last lines of " + run.stderr_path + ":" + tail_of(run.stderr_path, 15);
  return make_error(msg);
}

}  // namespace kindling::image
