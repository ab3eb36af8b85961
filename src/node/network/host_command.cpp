#include "node/network/host_command.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.hpp"

namespace kindling::node {

std::string find_host_tool(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    std::string path = dir + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return {};
}

Status run_host_command(const std::vector<std::string>& argv, const std::string& stdin_text) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') return make_error("host command needs an absolute path");
  // stdin comes from a memfd: no pipe to write into, so no SIGPIPE and no
  // deadlock against a tool that writes a lot to stderr before reading.
  UniqueFd in_r(::memfd_create("kindling-stdin", MFD_CLOEXEC));
  if (!in_r.valid()) return make_error(std::string("memfd_create: ") + std::strerror(errno));
  for (std::size_t off = 0; off < stdin_text.size();) {
    ssize_t n = ::write(in_r.get(), stdin_text.data() + off, stdin_text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(std::string("memfd write: ") + std::strerror(errno));
    off += static_cast<std::size_t>(n);
  }
  ::lseek(in_r.get(), 0, SEEK_SET);
  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) return make_error(std::string("pipe: ") + std::strerror(errno));
  UniqueFd err_r(err[0]), err_w(err[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  char path_env[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  char lang_env[] = "LC_ALL=C";
  char* envp[] = {path_env, lang_env, nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return make_error("cannot run " + argv[0] + ": " + std::strerror(rc));
  in_r.reset();
  err_w.reset();

  std::string errors;
  for (;;) {
    char buf[4096];
    ssize_t n = ::read(err_r.get(), buf, sizeof buf);
    if (n > 0) {
      if (errors.size() < 16384) errors.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ok_status();
  std::string command;
  for (std::size_t i = 0; i < argv.size() && i < 6; ++i) command += (i ? " " : "") + argv[i];
  while (!errors.empty() && (errors.back() == '\n' || errors.back() == ' ')) errors.pop_back();
  return make_error(command + " failed" + (errors.empty() ? std::string() : ": " + errors));
}

}  // namespace kindling::node
