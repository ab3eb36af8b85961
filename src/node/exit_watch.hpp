// Waiting on the io_context for a machine's root process to end, through a
// pidfd of our own. Two traps are handled here, once:
// - asio skips EPOLL_CTL_DEL when it closes a descriptor, trusting close()
//   to drop the registration; a clone()d child still holding the fd until its
//   exec keeps it alive, and a stale event can then wake another watcher. The
//   watch is therefore deregistered explicitly before it is closed;
// - a wake-up is confirmed with poll() before it counts as an exit.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <sys/types.h>

#include <functional>
#include <memory>

#include "common/result.hpp"

namespace kindling::node {

using ExitWatch = std::shared_ptr<boost::asio::posix::stream_descriptor>;

Result<ExitWatch> make_exit_watch(boost::asio::io_context& io, pid_t pid);

// Calls `on_exit` with no error once the process has exited, or with
// operation_aborted if the wait is cancelled.
void await_exit(const ExitWatch& watch, std::function<void(boost::system::error_code)> on_exit);

}  // namespace kindling::node
