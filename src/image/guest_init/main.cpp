// kindling-init: /init of the microVM initramfs. It loads the modules the
// image build listed (no module resolver here: the list is in load order),
// mounts the root image read-only with a tmpfs overlay on top, moves that
// to / and execs the agent as PID 1. Any failure is printed to the console
// and powers the VM off (reboot=k makes that a VMM exit), never a hang.
//
// It runs before anything else exists, so it is static and uses libc only.
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "image/kernel_cmdline.hpp"

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "kindling-init: %s: %s\n", what.c_str(), std::strerror(errno));
  std::fflush(stderr);
  ::sync();
  ::reboot(RB_POWER_OFF);
  for (;;) ::pause();
}

void must_mount(const char* src, const char* target, const char* type, unsigned long flags, const char* data) {
  ::mkdir(target, 0755);
  if (::mount(src, target, type, flags, data) != 0) fail(std::string("mount ") + type + " on " + target);
}

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The block device appears asynchronously after virtio_blk loads.
void wait_for(const std::string& path) {
  for (int i = 0; i < 500; ++i) {
    if (::access(path.c_str(), F_OK) == 0) return;
    ::usleep(10000);
  }
  errno = ENOENT;
  fail("waiting 5 s for " + path);
}

}  // namespace

int main() {
  must_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  must_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  must_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);

  std::istringstream order(read_file("/etc/kindling-modules"));
  for (std::string ko; std::getline(order, ko);) {
    if (ko.empty()) continue;
    int fd = ::open(("/lib/modules/" + ko).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open module " + ko);
    // EEXIST: already loaded (a dependency listed twice is harmless).
    if (::syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST) fail("load module " + ko);
    ::close(fd);
  }

  auto root = kindling::image::parse_guest_root(read_file("/proc/cmdline"));
  if (!root) {
    errno = EINVAL;
    fail(root.error().message);
  }
  wait_for(root->device);
  // lower: the image, read-only. upper/work: RAM. Every write of the session
  // lands in the tmpfs and is gone when the VM is.
  must_mount(root->device.c_str(), "/lower", root->fstype.c_str(), MS_RDONLY, nullptr);
  must_mount("tmpfs", "/rw", "tmpfs", 0, "mode=0755");
  ::mkdir("/rw/upper", 0755);
  ::mkdir("/rw/work", 0755);
  must_mount("overlay", "/newroot", "overlay", 0, "lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work");
  for (const char* m : {"/dev", "/proc", "/sys"}) {
    std::string target = std::string("/newroot") + m;
    ::mkdir(target.c_str(), 0755);
    if (::mount(m, target.c_str(), nullptr, MS_MOVE, nullptr) != 0) fail(std::string("move ") + m);
  }
  // switch_root: the initramfs stays in memory (it is tiny); / becomes the
  // overlay.
  if (::chdir("/newroot") != 0) fail("chdir /newroot");
  if (::mount(".", "/", nullptr, MS_MOVE, nullptr) != 0) fail("move the new root to /");
  if (::chroot(".") != 0 || ::chdir("/") != 0) fail("chroot");
  char agent[] = "/kindling/agent";
  char* argv[] = {agent, nullptr};
  char* envp[] = {const_cast<char*>("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nullptr};
  ::execve(agent, argv, envp);
  fail("exec /kindling/agent");
}
