// Test harness for kindling-vmm as a real process: spawn it, talk to its API
// socket, wait for its exit with a deadline, and never leak it (the
// destructor kills and reaps). Paths of the binary and guests come from CMake.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kindling::vmm::test {

std::string vmm_binary();
std::string guest_path(const std::string& name);  // e.g. "hello" -> .../hello.elf
bool running_on_pvm();                            // the nested kvm_pvm hypervisor (see docs/vmm-nested-kvm.md)

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& data);
// Polls `cond` every 10 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout);

class VmmProcess {
 public:
  // stdout (guest serial by default) and stderr (logs) go to files in `dir`.
  VmmProcess(const std::vector<std::string>& args, const TempDir& dir);
  // Any program (e.g. QEMU, for side-by-side checks), same capture and reaping.
  VmmProcess(const std::string& program, const std::vector<std::string>& args, const TempDir& dir);
  ~VmmProcess();
  VmmProcess(const VmmProcess&) = delete;
  VmmProcess& operator=(const VmmProcess&) = delete;

  pid_t pid() const { return pid_; }
  // The exit status, or nullopt if it is still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  void signal(int sig);
  std::string stdout_text() const { return read_file(stdout_path_); }
  std::string stderr_text() const { return read_file(stderr_path_); }

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::optional<int> status_;
  std::string stdout_path_, stderr_path_;
};

struct HttpReply {
  int status = 0;
  std::string body;
};

class ApiClient {
 public:
  // Connects, retrying until the socket exists (the VMM may still be starting).
  explicit ApiClient(const std::string& socket_path, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~ApiClient();
  bool connected() const { return fd_ >= 0; }
  HttpReply request(const std::string& method, const std::string& path, const std::string& body = "");
  // Sends raw bytes and returns whatever comes back until the peer closes.
  std::string raw(const std::string& bytes);

 private:
  int fd_ = -1;
};

// Counts lines in `text` that start with `prefix`.
int count_lines_with_prefix(const std::string& text, const std::string& prefix);

}  // namespace kindling::vmm::test
