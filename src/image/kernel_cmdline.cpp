#include "image/kernel_cmdline.hpp"

#include <cstdio>

namespace kindling::image {
namespace {

bool is_plain(std::string_view v) {
  if (v.empty()) return false;
  for (unsigned char c : v)
    if (c <= ' ' || c == '"' || c == '\'' || c == 0x7f) return false;
  return true;
}

}  // namespace

Result<std::string> guest_kernel_cmdline(const GuestKernelArgs& a) {
  std::vector<std::string> words;
  if (!a.console.empty()) {
    if (!is_plain(a.console)) return make_error("kernel command line: console '" + a.console + "' is not a plain word");
    words.push_back("console=" + a.console);
  }
  // reboot=k: a guest reboot is a triple fault the VMM sees as exit, not a
  // BIOS reset. panic=1: a crashed guest exits within a second.
  // pci=off: the guest has only virtio-mmio devices; probing PCI costs time.
  // 8250.nr_uarts=1: one serial port, not four to probe.
  // i8042.*: the i8042 exists only to reset; skip the PS/2 aux/mux/PnP probe
  // that otherwise waits for timeouts.
  for (const char* w : {"reboot=k", "panic=1", "pci=off", "8250.nr_uarts=1", "i8042.noaux", "i8042.nomux",
                        "i8042.nopnp", "i8042.dumbkbd"})
    words.emplace_back(w);
  if (a.quiet) words.emplace_back("quiet");
  if (!is_plain(a.root_device) || a.root_device[0] != '/')
    return make_error("kernel command line: root device '" + a.root_device + "' must be an absolute /dev path");
  if (a.root_fstype != "squashfs" && a.root_fstype != "erofs")
    return make_error("kernel command line: root filesystem type '" + a.root_fstype + "' is not squashfs or erofs");
  // The initramfs init mounts the root itself (read-only, with a RAM
  // overlay), so it is named under our own keys: root= would make a kernel
  // without an initramfs try to mount it writable.
  words.push_back("kindling.root=" + a.root_device);
  words.push_back("kindling.rootfstype=" + a.root_fstype);
  for (const auto& d : a.devices) {
    if (d.base == 0 || d.base % 4096 != 0) return make_error("kernel command line: virtio-mmio base must be a non-zero multiple of 4096");
    if (d.irq == 0) return make_error("kernel command line: virtio-mmio irq must be non-zero");
    char buf[64];
    std::snprintf(buf, sizeof buf, "virtio_mmio.device=4K@0x%llx:%u", static_cast<unsigned long long>(d.base), d.irq);
    words.emplace_back(buf);
  }
  for (const auto& e : a.extra) {
    if (!is_plain(e)) return make_error("kernel command line: extra entry '" + e + "' is not a plain word");
    words.push_back(e);
  }
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  if (out.size() + 1 > kMaxKernelCmdline)
    return make_error("kernel command line is " + std::to_string(out.size()) + " bytes; the kernel takes at most " +
                      std::to_string(kMaxKernelCmdline - 1));
  return out;
}

Result<GuestRoot> parse_guest_root(std::string_view cmdline) {
  GuestRoot r;
  std::size_t i = 0;
  while (i < cmdline.size()) {
    while (i < cmdline.size() && (cmdline[i] == ' ' || cmdline[i] == '\n' || cmdline[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < cmdline.size() && cmdline[j] != ' ' && cmdline[j] != '\n' && cmdline[j] != '\t') ++j;
    std::string_view w = cmdline.substr(i, j - i);
    // The last one wins, as with the kernel's own parameters.
    if (w.rfind("kindling.root=", 0) == 0) r.device = std::string(w.substr(14));
    if (w.rfind("kindling.rootfstype=", 0) == 0) r.fstype = std::string(w.substr(20));
    i = j;
  }
  if (r.device.empty()) return make_error("kernel command line has no kindling.root=");
  if (r.fstype.empty()) r.fstype = "squashfs";
  return r;
}

}  // namespace kindling::image
