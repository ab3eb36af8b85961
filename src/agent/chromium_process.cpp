#include "agent/chromium_process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace kindling::agent {

namespace {

// Flags every Chromium in Kindling runs with (DEVELOPERS.md): without the
// networking ones it floods a closed network with background requests.
constexpr const char* kBaseFlags[] = {
    "--headless",           "--disable-gpu",          "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    // Background fetches the flags above leave on (seen through a logging
    // proxy): model downloads, network time, media router, translate. Each
    // is a request to Google per browser start, retried on a closed network.
    // (GAIA's ListAccounts and one update2 ping remain; no switch stops them.)
    ("--disable-features=OptimizationHints,OptimizationGuideModelDownloading,OptimizationHintsFetching,"
     "OptimizationTargetPrediction,NetworkTimeServiceQuerying,MediaRouter,Translate"),
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
};

bool directory_is_empty(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (!dir) return false;
  bool empty = true;
  while (dirent* entry = ::readdir(dir)) {
    if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  ::closedir(dir);
  return empty;
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

Status prepare_user_data_dir(const std::string& path, uid_t uid, gid_t gid) {
  // Missing parents are created root-owned and traversable (0755).
  for (std::size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1))
    if (::mkdir(path.substr(0, slash).c_str(), 0755) != 0 && errno != EEXIST)
      return make_error(errno_text("cannot create " + path.substr(0, slash)));
  if (::mkdir(path.c_str(), 0700) != 0) {
    if (errno != EEXIST) return make_error(errno_text("cannot create user-data-dir " + path));
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return make_error("user-data-dir " + path + " exists and is not a directory");
    if (!directory_is_empty(path))
      return make_error("user-data-dir " + path + " exists and is not empty; a session needs a fresh profile");
  }
  if (::chown(path.c_str(), uid, gid) != 0 && !(errno == EPERM && uid == ::geteuid()))
    return make_error(errno_text("cannot give user-data-dir " + path + " to " + std::to_string(uid) + ":" +
                                 std::to_string(gid)));
  if (::chmod(path.c_str(), 0700) != 0) return make_error(errno_text("chmod " + path));
  return ok_status();
}

std::string downloads_dir_for(const std::string& user_data_dir) {
  auto slash = user_data_dir.find_last_of('/');
  std::string parent = slash == 0 || slash == std::string::npos ? "" : user_data_dir.substr(0, slash);
  return parent + "/downloads";
}

Status prepare_downloads(const std::string& user_data_dir, uid_t uid, gid_t gid) {
  const std::string downloads = downloads_dir_for(user_data_dir);
  // Beside it, uploads: files the host puts there for file inputs.
  const std::string uploads = downloads.substr(0, downloads.size() - std::strlen("downloads")) + "uploads";
  for (const std::string& dir : {downloads, uploads}) {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return make_error(errno_text("cannot create " + dir));
    // The host reads and writes these through the machine's root (never
    // following links), so they must be plain directories.
    struct stat st{};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return make_error(dir + " is not a directory");
    if (::chown(dir.c_str(), uid, gid) != 0 && !(errno == EPERM && uid == ::geteuid()))
      return make_error(errno_text("cannot give " + dir + " to the browser user"));
  }
  const std::string profile = user_data_dir + "/Default";
  if (::mkdir(profile.c_str(), 0700) != 0 && errno != EEXIST) return make_error(errno_text("cannot create " + profile));
  if (::chown(profile.c_str(), uid, gid) != 0 && !(errno == EPERM && uid == ::geteuid()))
    return make_error(errno_text("cannot give " + profile + " to the browser user"));
  const std::string prefs_path = profile + "/Preferences";
  // Only on a fresh profile: a relaunch keeps what Chromium wrote since.
  UniqueFd fd(::open(prefs_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    if (errno == EEXIST) return ok_status();
    return make_error(errno_text("cannot create " + prefs_path));
  }
  const std::string prefs = R"({"download":{"default_directory":")" + downloads +
                            R"(","prompt_for_download":false,"directory_upgrade":true}})";
  if (::write(fd.get(), prefs.data(), prefs.size()) != static_cast<ssize_t>(prefs.size()))
    return make_error(errno_text("cannot write " + prefs_path));
  if (::fchown(fd.get(), uid, gid) != 0 && !(errno == EPERM && uid == ::geteuid()))
    return make_error(errno_text("cannot give " + prefs_path + " to the browser user"));
  return ok_status();
}

std::vector<std::string> chromium_argv(const AgentConfig& config, bool sandbox) {
  std::vector<std::string> argv = {config.chromium_path};
  for (const char* flag : kBaseFlags) argv.emplace_back(flag);
  argv.push_back("--user-data-dir=" + config.user_data_dir);
  if (!sandbox) argv.emplace_back("--no-sandbox");
  // Every request goes through the agent's forward proxy (loopback stays
  // direct, Chromium's default), so the session's upstream can be set on a
  // running browser.
  if (config.proxy_port != 0) argv.push_back("--proxy-server=http://127.0.0.1:" + std::to_string(config.proxy_port));
  for (const auto& flag : config.extra_flags) argv.push_back(flag);
  if (!config.extension_dirs.empty()) {
    std::string dirs;
    for (const auto& dir : config.extension_dirs) dirs += (dirs.empty() ? "" : ",") + dir;
    // Chromium 156 (Debian) still honours --load-extension without
    // --disable-features=DisableLoadExtensionCommandLineSwitch (tried).
    argv.push_back("--load-extension=" + dirs);
    argv.push_back("--disable-extensions-except=" + dirs);
  }
  // The first tab opens on about:blank. Without a URL, headless Chromium
  // loads chrome://new-tab-page-third-party in it, and a client that attaches
  // while that page is still loading (Playwright connectOverCDP) can wait on
  // it until its timeout (seen ~1 in 6 connects on a loaded host).
  argv.emplace_back("about:blank");
  return argv;
}

Result<ChromiumProcess> spawn_chromium(const AgentConfig& config, bool sandbox) {
  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> args = chromium_argv(config, sandbox);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = {
      "PATH=/usr/local/bin:/usr/bin:/bin",
      "HOME=" + config.user_data_dir,  // dconf, fontconfig caches: inside the fresh profile
      "XDG_CONFIG_HOME=" + config.user_data_dir + "/.config",
      "XDG_CACHE_HOME=" + config.user_data_dir + "/.cache",
      "LANG=C.UTF-8",
  };
  if (const char* tz = ::getenv("TZ")) env.push_back(std::string("TZ=") + tz);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const bool switch_user = ::geteuid() != config.browser_uid || ::getegid() != config.browser_gid;
  const bool drop_groups = ::geteuid() == 0;

  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return make_error(errno_text("pipe"));
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  int err_pipe[2];  // closed by a successful exec; carries errno otherwise
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return make_error(errno_text("pipe"));
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);
  const pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) return make_error(errno_text("fork"));
  if (pid == 0) {
    struct Failure { int step; int err; };
    auto fail = [&](int step) {
      Failure f{step, errno};
      ssize_t ignored = ::write(err_write.get(), &f, sizeof(f));
      (void)ignored;
      ::_exit(127);
    };
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    if (::setsid() < 0) fail(1);
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(2);
    if (::getppid() != parent) ::_exit(127);  // the agent died before prctl
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    if (::dup2(out_write.get(), STDOUT_FILENO) < 0 || ::dup2(out_write.get(), STDERR_FILENO) < 0) fail(3);
    if (::chdir(config.user_data_dir.c_str()) != 0) fail(4);
    if (drop_groups && ::setgroups(0, nullptr) != 0) fail(5);
    if (switch_user) {
      if (::setresgid(config.browser_gid, config.browser_gid, config.browser_gid) != 0) fail(6);
      if (::setresuid(config.browser_uid, config.browser_uid, config.browser_uid) != 0) fail(7);
    }
    ::execve(argv[0], argv.data(), envp.data());
    fail(8);
  }
  out_write.reset();
  err_write.reset();
  struct { int step; int err; } failure{};
  ssize_t n;
  do n = ::read(err_read.get(), &failure, sizeof(failure));
  while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(failure))) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    static const char* const kSteps[] = {"?", "setsid", "prctl", "dup2", "chdir", "setgroups",
                                         "setresgid", "setresuid", "execve"};
    const char* step = failure.step >= 1 && failure.step <= 8 ? kSteps[failure.step] : "?";
    return make_error(std::string("cannot start Chromium (") + config.chromium_path + "): " + step + ": " +
                      std::strerror(failure.err));
  }
  ::fcntl(out_read.get(), F_SETFL, ::fcntl(out_read.get(), F_GETFL) | O_NONBLOCK);
  ChromiumProcess process;
  process.pid = pid;
  process.stderr_pipe = std::move(out_read);
  return process;
}

std::optional<DevToolsEndpoint> parse_devtools_active_port(std::string_view text) {
  auto newline = text.find('\n');
  if (newline == std::string_view::npos) return std::nullopt;
  std::string_view port_text = text.substr(0, newline);
  std::string_view path = text.substr(newline + 1);
  while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) path.remove_suffix(1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
    return std::nullopt;
  if (!path.starts_with("/devtools/browser/") || path.size() > 256 ||
      path.find_first_of(" \r\n?#") != std::string_view::npos)
    return std::nullopt;
  return DevToolsEndpoint{static_cast<std::uint16_t>(port), std::string(path)};
}

std::optional<DevToolsEndpoint> read_devtools_active_port(const std::string& user_data_dir) {
  std::string path = user_data_dir + "/DevToolsActivePort";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  UniqueFd file(fd);
  char buf[512];
  ssize_t n = ::read(file.get(), buf, sizeof(buf));
  if (n <= 0) return std::nullopt;
  return parse_devtools_active_port(std::string_view(buf, static_cast<std::size_t>(n)));
}

std::optional<std::string> find_sandbox_refusal(std::string_view output) {
  // What Chromium prints when it cannot build its namespace/setuid sandbox.
  static constexpr std::string_view kSignatures[] = {
      "No usable sandbox", "Failed to move to new namespace", "SUID sandbox helper binary",
  };
  for (auto signature : kSignatures) {
    auto at = output.find(signature);
    if (at == std::string_view::npos) continue;
    auto line_start = output.rfind('\n', at);
    line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
    auto line_end = output.find('\n', at);
    std::string line(output.substr(line_start, line_end == std::string_view::npos ? std::string_view::npos
                                                                                 : line_end - line_start));
    if (line.size() > 300) line.resize(300);
    return line;
  }
  return std::nullopt;
}

}  // namespace kindling::agent
