#include "agent/listener.hpp"

#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kindling::agent {

namespace {
constexpr int kBacklog = 128;
std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }
}  // namespace

Result<UniqueFd> listen_on(const ListenAddress& address) {
  if (address.kind == ListenAddress::Kind::kVsock) {
    UniqueFd sock(::socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!sock.valid()) return make_error(errno_text("vsock socket"));
    sockaddr_vm addr{};
    addr.svm_family = AF_VSOCK;
    addr.svm_cid = VMADDR_CID_ANY;
    addr.svm_port = address.vsock_port;
    if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      return make_error(errno_text("bind " + address.to_string()));
    if (::listen(sock.get(), kBacklog) != 0) return make_error(errno_text("listen " + address.to_string()));
    return sock;
  }
  // The socket's directory (e.g. /run/kindling) may not exist in a fresh machine.
  for (std::size_t slash = address.unix_path.find('/', 1); slash != std::string::npos;
       slash = address.unix_path.find('/', slash + 1))
    if (::mkdir(address.unix_path.substr(0, slash).c_str(), 0755) != 0 && errno != EEXIST)
      return make_error(errno_text("cannot create " + address.unix_path.substr(0, slash)));
  struct stat st{};
  if (::lstat(address.unix_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return make_error(address.unix_path + " exists and is not a socket");
    ::unlink(address.unix_path.c_str());
  }
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return make_error(errno_text("unix socket"));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, address.unix_path.c_str(), address.unix_path.size() + 1);
  // Only the host (root, or the sandbox's mapped root) may talk to the agent.
  mode_t old_umask = ::umask(0077);
  int rc = ::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::umask(old_umask);
  if (rc != 0) return make_error(errno_text("bind " + address.to_string()));
  if (::listen(sock.get(), kBacklog) != 0) return make_error(errno_text("listen " + address.to_string()));
  return sock;
}

void remove_listen_path(const ListenAddress& address) {
  if (address.kind == ListenAddress::Kind::kUnix) ::unlink(address.unix_path.c_str());
}

}  // namespace kindling::agent
