#include "vmm_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace kindling::vmm::test {

std::string vmm_binary() { return KINDLING_VMM_BINARY; }
std::string guest_path(const std::string& name) { return std::string(KINDLING_GUEST_DIR) + "/" + name + ".elf"; }
bool running_on_pvm() { return std::filesystem::exists("/sys/module/kvm_pvm"); }

TempDir::TempDir() {
  char tmpl[] = "/tmp/kindling-vmm-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

VmmProcess::VmmProcess(const std::vector<std::string>& args, const TempDir& dir) : VmmProcess(vmm_binary(), args, dir) {}

VmmProcess::VmmProcess(const std::string& program, const std::vector<std::string>& args, const TempDir& dir)
    : stdout_path_(dir.file("vmm.stdout")), stderr_path_(dir.file("vmm.stderr")) {
  std::vector<std::string> full = {program};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  int rc = posix_spawnp(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error(std::string("posix_spawn: ") + std::strerror(rc));
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
}

VmmProcess::~VmmProcess() {
  if (!status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st;
    ::waitpid(pid_, &st, 0);
  }
  if (pidfd_ >= 0) ::close(pidfd_);
}

std::optional<int> VmmProcess::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  pollfd p{pidfd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
  int st = 0;
  if (::waitpid(pid_, &st, 0) != pid_) return std::nullopt;
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return status_;
}

void VmmProcess::signal(int sig) {
  if (!status_) ::kill(pid_, sig);
}

ApiClient::ApiClient(const std::string& socket_path, std::chrono::milliseconds timeout) {
  eventually(
      [&] {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
          fd_ = fd;
          return true;
        }
        ::close(fd);
        return false;
      },
      timeout);
  if (fd_ >= 0) {
    timeval tv{20, 0};  // a hung VMM fails the test instead of hanging it
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
}

ApiClient::~ApiClient() {
  if (fd_ >= 0) ::close(fd_);
}

HttpReply ApiClient::request(const std::string& method, const std::string& path, const std::string& body) {
  HttpReply reply;
  if (fd_ < 0) return reply;
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n";
  if (!body.empty() || method != "GET") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return reply;
  std::string buf;
  char chunk[4096];
  for (;;) {
    size_t head_end = buf.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      size_t length = 0;
      auto cl = buf.find("Content-Length: ");
      if (cl != std::string::npos && cl < head_end) length = std::stoul(buf.substr(cl + 16));
      if (buf.size() >= head_end + 4 + length) {
        reply.status = std::stoi(buf.substr(9, 3));
        reply.body = buf.substr(head_end + 4, length);
        return reply;
      }
    }
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return reply;
    buf.append(chunk, static_cast<size_t>(n));
  }
}

std::string ApiClient::raw(const std::string& bytes) {
  if (fd_ < 0) return {};
  ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string buf;
  char chunk[4096];
  for (;;) {
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return buf;
    buf.append(chunk, static_cast<size_t>(n));
  }
}

int count_lines_with_prefix(const std::string& text, const std::string& prefix) {
  int n = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) ++n;
  }
  return n;
}

}  // namespace kindling::vmm::test
