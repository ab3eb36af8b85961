// The seccomp policy of a browser machine: a deny list of syscalls that a
// browser (Chromium and its own sandbox) never needs, each answered EPERM.
// Everything else is allowed, because Chromium installs its own, stricter
// filters on its renderers; ours bounds what the machine as a whole can ask
// of the kernel. Chromium still needs clone/unshare with CLONE_NEWUSER,
// chroot, seccomp and prctl, so those stay allowed.
//
// The filter is compiled to classic BPF ahead of time, so a freshly cloned
// child can install it with two raw syscalls and no allocation.
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

#include "common/result.hpp"

namespace kindling {

// Names of the denied syscalls, for docs and tests.
const std::vector<std::string>& browser_denied_syscalls();

// The compiled filter (native architecture; other ABIs kill the process).
Result<std::vector<sock_filter>> compile_browser_seccomp();

// Installs a compiled filter on the calling thread with NO_NEW_PRIVS.
// Async-signal-safe: raw prctl/seccomp syscalls only. Returns 0 or an errno.
int install_seccomp_program(const std::vector<sock_filter>& program);

}  // namespace kindling
