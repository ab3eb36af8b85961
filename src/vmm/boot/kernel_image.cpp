#include "vmm/boot/kernel_image.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.hpp"
#include "vmm/arch/x86/layout.hpp"
#include "vmm/boot/bzimage.hpp"
#include "vmm/boot/pvh_elf.hpp"

namespace kindling::vmm {

Result<LoadedKernel> load_kernel(const GuestMemory& mem, const KernelInputs& in) {
  if (in.kernel.empty()) return make_error("kernel image is empty");
  if (in.kernel.size() > mem.size()) return make_error("kernel image is larger than guest memory");
  if (is_elf(in.kernel)) return load_pvh_elf(mem, in);
  if (is_bzimage(in.kernel)) return load_bzimage(mem, in);
  return make_error("kernel image format not recognised: expected an ELF with a PVH note or a bzImage");
}

Status write_cmdline(const GuestMemory& mem, std::string_view cmdline) {
  if (cmdline.size() >= layout::kCmdlineMaxSize) {
    return make_error(fmt::format("kernel command line is {} bytes; at most {} are allowed", cmdline.size(), layout::kCmdlineMaxSize - 1));
  }
  if (cmdline.find('\0') != std::string_view::npos) return make_error("kernel command line contains a NUL byte");
  KINDLING_TRY(dst, mem.slice(layout::kCmdlineAddr, layout::kCmdlineMaxSize));
  std::memset(dst.data(), 0, dst.size());
  std::memcpy(dst.data(), cmdline.data(), cmdline.size());
  return ok_status();
}

Result<uint64_t> place_initrd(const GuestMemory& mem, std::span<const uint8_t> initrd, uint64_t floor, uint64_t max_addr) {
  const auto& low = mem.regions().front();
  uint64_t top = std::min(low.guest_addr + low.size, max_addr + 1);
  if (initrd.size() > top) return make_error("initrd does not fit in guest memory");
  uint64_t addr = (top - initrd.size()) & ~uint64_t{0xfff};
  if (addr < floor) return make_error("initrd does not fit in guest memory above the kernel");
  KINDLING_TRY(w, mem.write(addr, initrd));
  (void)w;
  return addr;
}

Result<std::string> read_file_bounded(const std::string& path, uint64_t max_size, const char* what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return make_error(fmt::format("The {} file cannot be opened: {} ({})", what, std::strerror(errno), path));
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return make_error(fmt::format("cannot stat the {} file: {}", what, std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) return make_error(fmt::format("The {} file is not a regular file ({})", what, path));
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    return make_error(fmt::format("The {} file is {} bytes, larger than guest memory", what, st.st_size));
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(fmt::format("cannot read the {} file: {}", what, n == 0 ? "short read" : std::strerror(errno)));
    got += static_cast<size_t>(n);
  }
  return data;
}

}  // namespace kindling::vmm
