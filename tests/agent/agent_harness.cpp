#include "agent_harness.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sched.h>
#include <seccomp.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#ifndef KINDLING_AGENT_BINARY
#error "KINDLING_AGENT_BINARY must name the kindling-agent binary"
#endif

namespace kindling::agent_test {

namespace {

using Clock = std::chrono::steady_clock;

int remove_entry(const char* path, const struct stat*, int, FTW*) { return ::remove(path); }

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

bool wait_readable(int fd, Clock::time_point deadline) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    int rc = ::poll(&p, 1, ms_left(deadline));
    if (rc < 0 && errno == EINTR) continue;
    return rc > 0;
  }
}

std::optional<pid_t> parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = content.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  char state = 0;
  int ppid = 0;
  if (std::sscanf(content.c_str() + paren + 1, " %c %d", &state, &ppid) != 2) return std::nullopt;
  if (state == 'Z') return std::nullopt;  // already dead, only waiting to be reaped
  return ppid;
}

}  // namespace

TempDir::TempDir(const std::string& base) {
  std::string tmpl = base + "/kindling-agent-test.XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
  ::chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() { ::nftw(path_.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

AgentProcess::AgentProcess(const AgentOptions& options)
    : dir_holder_(std::in_place, options.as_pid1 ? "/var/tmp" : "/tmp"), dir_(*dir_holder_) {
  socket_path_ = dir_.path() + "/agent.sock";
  user_data_dir_ = dir_.path() + "/profile";
  log_path_ = dir_.path() + "/agent.log";
  std::vector<std::string> args = {KINDLING_AGENT_BINARY,
                                   "--listen",
                                   "unix:" + socket_path_,
                                   "--chromium",
                                   options.chromium,
                                   "--user-data-dir",
                                   user_data_dir_,
                                   // Chromium refuses its sandbox as root; nobody keeps it on.
                                   "--browser-uid",
                                   "65534",
                                   "--browser-gid",
                                   "65534",
                                   "--log-level",
                                   "debug"};
  for (const auto& a : options.extra_args) args.push_back(a);
  if (options.as_pid1)
    args.insert(args.begin(), {"/usr/bin/unshare", "--pid", "--fork", "--kill-child", "--mount",
                               "--propagation", "private"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Orphans of a killed agent come back to the test, not to the machine's init.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  scmp_filter_ctx filter = nullptr;
  if (options.deny_user_namespaces) {
    filter = seccomp_init(SCMP_ACT_ALLOW);
    seccomp_rule_add(filter, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
    seccomp_rule_add(filter, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
    // clone3 passes its flags in memory a filter cannot read: make callers fall back to clone.
    seccomp_rule_add(filter, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  }
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // If the test dies, the agent dies, and with it Chromium (its own PDEATHSIG).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    if (log_fd >= 0) ::dup2(log_fd, STDERR_FILENO);
    if (filter && seccomp_load(filter) != 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (log_fd >= 0) ::close(log_fd);
  if (filter) seccomp_release(filter);
}

AgentProcess::~AgentProcess() {
  kill_and_reap();
  check_sanitizer_reports();
}

void AgentProcess::kill_and_reap() {
  if (pid_ <= 0) return;
  // Gracefully first: the agent reaps all of Chromium itself.
  ::kill(pid_, SIGTERM);
  if (wait_exit(5s)) return;
  std::vector<pid_t> left = descendants(pid_);
  ::kill(pid_, SIGKILL);
  for (pid_t p : left) ::kill(p, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  // This process is a subreaper: the orphans are ours to reap.
  auto deadline = Clock::now() + 2s;
  for (pid_t p : left)
    while (::waitpid(p, nullptr, WNOHANG) == 0 && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
}

void AgentProcess::check_sanitizer_reports() const {
  // In a -DKINDLING_SANITIZE=ON build a report in the agent's own log is a failure.
  std::istringstream lines(log());
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("chromium: ") != std::string::npos) continue;
    if (line.find("runtime error:") != std::string::npos || line.find("AddressSanitizer") != std::string::npos ||
        line.find("LeakSanitizer") != std::string::npos)
      ADD_FAILURE() << "sanitizer report from kindling-agent:\n" << log();
  }
}

std::optional<int> AgentProcess::wait_exit(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return status;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
}

bool AgentProcess::running() { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }

std::string AgentProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

pid_t AgentProcess::agent_pid() {
  if (process_cmdline(pid_).find("unshare") == std::string::npos) return pid_;
  for (pid_t p : descendants(pid_))
    if (process_cmdline(p).rfind(KINDLING_AGENT_BINARY, 0) == 0) return p;
  return -1;
}

std::vector<pid_t> descendants(pid_t root) {
  std::vector<std::pair<pid_t, pid_t>> links;  // (pid, ppid)
  DIR* proc = ::opendir("/proc");
  if (!proc) return {};
  while (dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    pid_t pid = std::atoi(entry->d_name);
    if (auto ppid = parent_of(pid)) links.emplace_back(pid, *ppid);
  }
  ::closedir(proc);
  std::vector<pid_t> found = {root};
  for (std::size_t i = 0; i < found.size(); ++i)
    for (auto [pid, ppid] : links)
      if (ppid == found[i]) found.push_back(pid);
  found.erase(found.begin());
  return found;
}

bool process_exists(pid_t pid) { return parent_of(pid).has_value(); }

std::string process_cmdline(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (auto& c : s)
    if (c == '\0') c = ' ';
  return s;
}

Result<UniqueFd> connect_agent(const std::string& socket_path, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
    if (Clock::now() >= deadline) return make_error("cannot connect to " + socket_path + ": " + strerror(errno));
    std::this_thread::sleep_for(10ms);
  }
}

Status write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(std::string("send: ") + strerror(errno));
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return ok_status();
}

Result<std::string> read_line(int fd, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::string line;
  while (line.size() < 256) {
    if (!wait_readable(fd, deadline)) return make_error("timed out reading a line (got '" + line + "')");
    char c;
    ssize_t n = ::recv(fd, &c, 1, 0);
    if (n == 0) return make_error("EOF before end of line (got '" + line + "')");
    if (n < 0) return make_error(std::string("recv: ") + strerror(errno));
    line += c;
    if (c == '\n') return line;
  }
  return make_error("line too long");
}

std::string read_http_response(int fd, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::string out;
  char buf[65536];
  for (;;) {
    auto header_end = out.find("\r\n\r\n");
    if (header_end != std::string::npos) {
      std::string headers = out.substr(0, header_end);
      for (auto& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto at = headers.find("content-length:");
      if (at == std::string::npos) return {};
      std::size_t length = std::strtoul(headers.c_str() + at + 15, nullptr, 10);
      if (out.size() >= header_end + 4 + length) return out;
    }
    if (out.size() > (1u << 20) || !wait_readable(fd, deadline)) return {};
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return {};
    out.append(buf, static_cast<std::size_t>(n));
  }
}

bool closed_by_peer(int fd, std::chrono::milliseconds timeout) {
  if (!wait_readable(fd, Clock::now() + timeout)) return false;
  char c;
  return ::recv(fd, &c, 1, 0) == 0;
}

std::string read_to_eof(int fd, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::string out;
  char buf[65536];
  while (out.size() < (64u << 20) && wait_readable(fd, deadline)) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

Result<ControlClient> ControlClient::connect(const std::string& socket_path) {
  KINDLING_TRY(fd, connect_agent(socket_path));
  ControlClient client;
  client.fd_ = std::move(fd);
  KINDLING_TRY(sent, write_all(client.fd_.get(), ap::kControlPreamble));
  (void)sent;
  return client;
}

Status ControlClient::send(const ap::HostMessage& message) {
  return write_all(fd_.get(), ap::encode_frame(ap::to_json(message)));
}

Status ControlClient::send_raw(std::string_view bytes) { return write_all(fd_.get(), bytes); }

Result<ap::AgentMessage> ControlClient::next(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto frame = decoder_.next()) {
      if (!frame->ok()) return frame->error();
      return ap::parse_agent_message(frame->value());
    }
    if (!wait_readable(fd_.get(), deadline)) return make_error("timed out waiting for a control message");
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n == 0) return make_error("EOF");
    if (n < 0) return make_error(std::string("recv: ") + strerror(errno));
    KINDLING_TRY(fed, decoder_.feed(std::string_view(buf, static_cast<std::size_t>(n))));
    (void)fed;
  }
}

Result<UniqueFd> open_cdp_stream(const std::string& socket_path) {
  KINDLING_TRY(fd, connect_agent(socket_path));
  KINDLING_TRY(sent, write_all(fd.get(), ap::kCdpPreamble));
  (void)sent;
  KINDLING_TRY(line, read_line(fd.get()));
  if (line != "OK\n") return make_error("agent refused the CDP stream: " + line);
  return fd;
}

// ---- websocket ----

Result<WebSocket> WebSocket::handshake(UniqueFd stream, const std::string& path) {
  WebSocket ws;
  ws.fd_ = std::move(stream);
  std::string request = "GET " + path +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  KINDLING_TRY(sent, write_all(ws.fd_.get(), request));
  (void)sent;
  auto deadline = Clock::now() + 10s;
  std::string response;
  while (response.find("\r\n\r\n") == std::string::npos) {
    if (response.size() > 8192 || !wait_readable(ws.fd_.get(), deadline))
      return make_error("no websocket handshake answer: " + response);
    char buf[4096];
    ssize_t n = ::recv(ws.fd_.get(), buf, sizeof(buf), 0);
    if (n <= 0) return make_error("EOF during websocket handshake: " + response);
    response.append(buf, static_cast<std::size_t>(n));
  }
  if (response.rfind("HTTP/1.1 101", 0) != 0) return make_error("handshake refused: " + response.substr(0, 200));
  ws.buffered_ = response.substr(response.find("\r\n\r\n") + 4);
  return ws;
}

Status WebSocket::send_text(std::string_view payload) {
  std::string frame;
  frame += static_cast<char>(0x81);
  const std::uint64_t len = payload.size();
  if (len < 126) {
    frame += static_cast<char>(0x80 | len);
  } else if (len < 65536) {
    frame += static_cast<char>(0x80 | 126);
    frame += static_cast<char>(len >> 8);
    frame += static_cast<char>(len & 0xff);
  } else {
    frame += static_cast<char>(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8) frame += static_cast<char>((len >> shift) & 0xff);
  }
  static std::mt19937 rng(12345);
  unsigned char mask[4];
  for (auto& m : mask) m = static_cast<unsigned char>(rng());
  frame.append(reinterpret_cast<char*>(mask), 4);
  std::size_t header = frame.size();
  frame.resize(header + payload.size());
  for (std::size_t i = 0; i < payload.size(); ++i) frame[header + i] = static_cast<char>(payload[i] ^ mask[i & 3]);
  return write_all(fd_.get(), frame);
}

Status WebSocket::read_exact(char* out, std::size_t n, Clock::time_point deadline) {
  while (buffered_.size() < n) {
    if (!wait_readable(fd_.get(), deadline)) return make_error("timed out reading a websocket frame");
    char buf[65536];
    ssize_t got = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (got <= 0) return make_error("websocket closed");
    buffered_.append(buf, static_cast<std::size_t>(got));
  }
  std::memcpy(out, buffered_.data(), n);
  buffered_.erase(0, n);
  return ok_status();
}

Result<std::string> WebSocket::receive_text(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::string message;
  for (;;) {
    unsigned char head[2];
    KINDLING_TRY(h, read_exact(reinterpret_cast<char*>(head), 2, deadline));
    (void)h;
    std::uint64_t len = head[1] & 0x7f;
    if (len == 126 || len == 127) {
      unsigned char ext[8];
      std::size_t n = len == 126 ? 2 : 8;
      KINDLING_TRY(e, read_exact(reinterpret_cast<char*>(ext), n, deadline));
      (void)e;
      len = 0;
      for (std::size_t i = 0; i < n; ++i) len = (len << 8) | ext[i];
    }
    if (len > (256u << 20)) return make_error("websocket frame too large");
    std::string payload(len, '\0');
    KINDLING_TRY(p, read_exact(payload.data(), len, deadline));
    (void)p;
    const int opcode = head[0] & 0x0f;
    if (opcode == 0x8) return make_error("websocket close frame");
    if (opcode == 0x9 || opcode == 0xA) continue;  // ping/pong: not part of a message
    message += payload;
    if (head[0] & 0x80) return message;
  }
}

Result<nlohmann::json> CdpSession::call(const std::string& method, nlohmann::json params,
                                        const std::string& session_id) {
  int id = next_id_++;
  nlohmann::json request = {{"id", id}, {"method", method}, {"params", std::move(params)}};
  if (!session_id.empty()) request["sessionId"] = session_id;
  KINDLING_TRY(sent, ws_.send_text(request.dump()));
  (void)sent;
  for (;;) {
    KINDLING_TRY(text, ws_.receive_text());
    auto reply = nlohmann::json::parse(text, nullptr, false);
    if (reply.is_discarded()) return make_error("CDP reply is not JSON");
    if (!reply.contains("id") || reply["id"] != id) continue;  // an event, or another reply
    if (reply.contains("error")) return make_error(method + " failed: " + reply["error"].dump());
    return reply["result"];
  }
}

}  // namespace kindling::agent_test
