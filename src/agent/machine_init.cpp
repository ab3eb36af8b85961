#include "agent/machine_init.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "agent/agent_log.hpp"
#include "common/unique_fd.hpp"

namespace kindling::agent {

namespace {

struct MountSpec {
  const char* source;
  std::string target;
  const char* fstype;
  unsigned long flags;
  const char* data;
  bool required;
};

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_octal(std::string_view field) {
  auto is_octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && is_octal(field[i + 1]) && is_octal(field[i + 2]) &&
        is_octal(field[i + 3])) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
      i += 3;
      continue;
    }
    out += field[i];
  }
  return out;
}

std::string read_file(const char* path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool mkdir_p(const std::string& path) {
  for (std::size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) return false;
  }
  return true;
}

std::string parent_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

// True when `dir` (or its nearest existing ancestor) sits on a writable fs.
bool on_writable_filesystem(std::string dir) {
  for (;;) {
    struct statvfs fs{};
    if (::statvfs(dir.c_str(), &fs) == 0) return (fs.f_flag & ST_RDONLY) == 0;
    if (dir == "/") return false;
    dir = parent_of(dir);
  }
}

void bring_up_loopback(MachineInitReport& report) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) {
    report.warnings.push_back(std::string("loopback: socket: ") + std::strerror(errno));
    return;
  }
  ifreq req{};
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &req) != 0) {
    report.warnings.push_back(std::string("loopback: SIOCGIFFLAGS: ") + std::strerror(errno));
    return;
  }
  if (req.ifr_flags & IFF_UP) return;
  req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP | IFF_RUNNING);
  // Chromium's debugging port is on 127.0.0.1: without lo nothing can answer.
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &req) != 0)
    report.errors.push_back(std::string("loopback: cannot bring 'lo' up: ") + std::strerror(errno));
}

}  // namespace

std::set<std::string> parse_mount_points(std::string_view mountinfo) {
  std::set<std::string> points;
  std::size_t start = 0;
  while (start < mountinfo.size()) {
    std::size_t end = mountinfo.find('\n', start);
    if (end == std::string_view::npos) end = mountinfo.size();
    std::string_view line = mountinfo.substr(start, end - start);
    start = end + 1;
    // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw": field 5 is the mount point.
    std::size_t field_start = 0;
    for (int field = 1; field <= 5; ++field) {
      std::size_t space = line.find(' ', field_start);
      if (field == 5) {
        auto point = line.substr(field_start, space == std::string_view::npos ? line.size() - field_start
                                                                              : space - field_start);
        if (!point.empty() && point[0] == '/') points.insert(unescape_octal(point));
        break;
      }
      if (space == std::string_view::npos) break;
      field_start = space + 1;
    }
  }
  return points;
}

MachineInitReport init_machine(const std::string& user_data_dir) {
  MachineInitReport report;
  // /proc first: without it there is no mountinfo to decide the rest from.
  if (::access("/proc/self/mountinfo", R_OK) != 0) {
    mkdir_p("/proc");
    if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
      report.errors.push_back(std::string("mount /proc: ") + std::strerror(errno));
  }
  std::set<std::string> mounted = parse_mount_points(read_file("/proc/self/mountinfo"));

  std::vector<MountSpec> specs = {
      {"sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, nullptr, false},
      {"devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", true},
      {"devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666", false},
      // Chromium's renderers share memory through /dev/shm.
      {"tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", true},
      {"tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", true},
      {"tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", false},
  };
  // The profile must land in RAM: a read-only image gets a tmpfs at its parent.
  std::string profile_parent = parent_of(user_data_dir);
  if (!on_writable_filesystem(profile_parent))
    specs.push_back({"tmpfs", profile_parent, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", true});

  for (const auto& spec : specs) {
    MountStep step{spec.target, false, false, spec.required, {}};
    if (mounted.count(spec.target)) {
      step.skipped = true;
      step.detail = "already mounted";
    } else if (!mkdir_p(spec.target) && errno != EROFS) {
      step.failed = true;
      step.detail = std::string("mkdir: ") + std::strerror(errno);
    } else if (::mount(spec.source, spec.target.c_str(), spec.fstype, spec.flags, spec.data) != 0) {
      step.failed = true;
      step.detail = std::string("mount ") + spec.fstype + ": " + std::strerror(errno);
    } else {
      mounted.insert(spec.target);
    }
    if (step.failed) {
      std::string line = spec.target + ": " + step.detail;
      (spec.required ? report.errors : report.warnings).push_back(line);
    }
    report.mounts.push_back(step);
  }
  bring_up_loopback(report);
  return report;
}

}  // namespace kindling::agent
