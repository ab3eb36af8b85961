// The image mounted read-only through a loop device: once per server, shared
// by every machine (each binds from it into its own mount namespace). The
// loop device is attached with autoclear, so it is freed by the kernel when
// the last mount of it goes: no loop device outlives the mount, even when the
// server is killed (a stale mount at the same point is detached on the next
// mount).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace kindling::image {

class ImageMount {
 public:
  static Result<std::unique_ptr<ImageMount>> mount(const std::string& image_file, const std::string& mount_point);
  ~ImageMount();  // unmounts (lazily if something still holds it)
  ImageMount(const ImageMount&) = delete;
  ImageMount& operator=(const ImageMount&) = delete;

  const std::string& path() const { return mount_point_; }
  const std::string& loop_device() const { return loop_device_; }
  Status unmount();

 private:
  ImageMount(std::string mount_point, std::string loop_device)
      : mount_point_(std::move(mount_point)), loop_device_(std::move(loop_device)) {}
  std::string mount_point_;
  std::string loop_device_;
  bool mounted_ = true;
};

// True if `path` is a mount point in this process's mount namespace.
bool is_mount_point(const std::string& path);
// Every mount point of this mount namespace (/proc/self/mountinfo).
std::vector<std::string> mount_points();
// The backing file of a loop device (/dev/loopN), empty when it is free.
std::string loop_backing_file(const std::string& loop_device);

}  // namespace kindling::image
