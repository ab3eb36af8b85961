// The agent's listening socket: a Unix socket (namespace sandbox) or AF_VSOCK
// on VMADDR_CID_ANY (microVM). Everything after accept is transport-agnostic.
#pragma once

#include "agent/agent_config.hpp"
#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace kindling::agent {

// Non-blocking, close-on-exec. A stale Unix socket file at the path is
// replaced; any other kind of file there is an error.
Result<UniqueFd> listen_on(const ListenAddress& address);

// Removes the Unix socket file on a clean exit (no-op for vsock).
void remove_listen_path(const ListenAddress& address);

}  // namespace kindling::agent
