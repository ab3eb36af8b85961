#include "image/image_mount.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/unique_fd.hpp"

namespace kindling::image {
namespace {

std::string err(int e) { return std::strerror(e); }

}  // namespace

std::vector<std::string> mount_points() {
  std::vector<std::string> points;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    // id parent major:minor root mountpoint ...
    std::size_t pos = 0;
    for (int field = 0; field < 4 && pos != std::string::npos; ++field) pos = line.find(' ', pos + 1);
    if (pos == std::string::npos) continue;
    std::size_t end = line.find(' ', pos + 1);
    points.push_back(line.substr(pos + 1, end - pos - 1));
  }
  return points;
}

bool is_mount_point(const std::string& path) {
  std::error_code ec;
  std::string canonical = std::filesystem::weakly_canonical(path, ec).string();
  for (const auto& point : mount_points())
    if (point == canonical) return true;
  return false;
}

std::string loop_backing_file(const std::string& loop_device) {
  std::string name = loop_device.substr(loop_device.rfind('/') + 1);
  std::ifstream in("/sys/block/" + name + "/loop/backing_file");
  std::string file;
  std::getline(in, file);
  return file;
}

Result<std::unique_ptr<ImageMount>> ImageMount::mount(const std::string& image_file, const std::string& mount_point) {
  std::error_code ec;
  std::filesystem::create_directories(mount_point, ec);
  if (ec) return make_error("cannot create mount point " + mount_point + ": " + ec.message());
  // A server killed earlier left its mount: detach it (autoclear then frees
  // its loop device once no machine uses it any more).
  while (is_mount_point(mount_point)) {
    if (::umount2(mount_point.c_str(), MNT_DETACH) != 0)
      return make_error("cannot detach the stale mount at " + mount_point + ": " + err(errno));
  }
  UniqueFd image(::open(image_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!image.valid()) return make_error("cannot open image " + image_file + ": " + err(errno));
  UniqueFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!control.valid()) return make_error("cannot open /dev/loop-control (loop devices needed for the image): " + err(errno));

  std::string device;
  UniqueFd loop;
  for (int attempt = 0; attempt < 16 && !loop.valid(); ++attempt) {
    int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return make_error("no free loop device: " + err(errno));
    device = "/dev/loop" + std::to_string(n);
    UniqueFd fd(::open(device.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return make_error("cannot open " + device + ": " + err(errno));
    loop_config config{};
    config.fd = static_cast<__u32>(image.get());
    config.block_size = 0;
    config.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
    std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), image_file.c_str(), LO_NAME_SIZE - 1);
    if (::ioctl(fd.get(), LOOP_CONFIGURE, &config) == 0) {
      loop = std::move(fd);
    } else if (errno != EBUSY) {
      return make_error("cannot attach " + image_file + " to " + device + ": " + err(errno));
    }  // EBUSY: another process took it first; ask for the next free one
  }
  if (!loop.valid()) return make_error("no loop device could be attached to " + image_file);
  if (::mount(device.c_str(), mount_point.c_str(), "squashfs", MS_RDONLY | MS_NODEV | MS_NOSUID, nullptr) != 0) {
    return make_error("cannot mount " + image_file + " (" + device + ") on " + mount_point + ": " + err(errno) +
                      " (is the squashfs module available?)");
  }
  // `loop` closes here; the mount holds the device, and autoclear frees it
  // when the mount goes.
  return std::unique_ptr<ImageMount>(new ImageMount(mount_point, device));
}

Status ImageMount::unmount() {
  if (!mounted_) return ok_status();
  if (::umount2(mount_point_.c_str(), 0) != 0) {
    int e = errno;
    if (e != EBUSY || ::umount2(mount_point_.c_str(), MNT_DETACH) != 0)
      return make_error("cannot unmount " + mount_point_ + ": " + err(e));
  }
  mounted_ = false;
  ::rmdir(mount_point_.c_str());
  return ok_status();
}

ImageMount::~ImageMount() { (void)unmount(); }

}  // namespace kindling::image
