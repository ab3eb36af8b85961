#include "node/exit_watch.hpp"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kindling::node {

namespace asio = boost::asio;

Result<ExitWatch> make_exit_watch(asio::io_context& io, pid_t pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return make_error(std::string("pidfd_open: ") + std::strerror(errno));
  auto* raw = new asio::posix::stream_descriptor(io, fd);
  return ExitWatch(raw, [](asio::posix::stream_descriptor* d) {
    boost::system::error_code ignored;
    d->cancel(ignored);
    int owned = d->release();  // deregisters from epoll, then we close
    if (owned >= 0) ::close(owned);
    delete d;
  });
}

void await_exit(const ExitWatch& watch, std::function<void(boost::system::error_code)> on_exit) {
  std::weak_ptr<asio::posix::stream_descriptor> weak = watch;
  watch->async_wait(asio::posix::stream_descriptor::wait_read,
                    [weak, on_exit = std::move(on_exit)](boost::system::error_code ec) mutable {
                      auto w = weak.lock();
                      if (ec || !w) return on_exit(ec ? ec : asio::error::operation_aborted);
                      pollfd p{w->native_handle(), POLLIN, 0};
                      if (::poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) return on_exit({});
                      await_exit(w, std::move(on_exit));  // spurious: wait again
                    });
}

}  // namespace kindling::node
