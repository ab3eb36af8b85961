// Vmm's snapshot endpoints: checks that the request fits the VMM's state,
// the files, and the CPU, then hands over to MicroVm. Split from vmm.cpp to
// keep each file to one job.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vmm/boot/kernel_image.hpp"
#include "vmm/logger.hpp"
#include "vmm/vmm.hpp"

namespace kindling::vmm {
namespace {

Status write_file(const std::string& path, std::span<const uint8_t> bytes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return make_error(fmt::format("Cannot create the snapshot file: {} ({})", std::strerror(errno), path));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(fmt::format("Cannot write the snapshot file: {} ({})", n < 0 ? std::strerror(errno) : "short write", path));
    done += static_cast<size_t>(n);
  }
  return ok_status();
}

// Firecracker's load-time overrides: another tap for an interface, another
// Unix socket path for vsock. Each must name a device the snapshot has.
Status apply_overrides(const SnapshotLoadConfig& c, std::vector<VirtioSavedState>& devices) {
  for (size_t i = 0; i < c.network_overrides.size(); ++i) {
    const auto& [iface_id, host_dev_name] = c.network_overrides[i];
    for (size_t j = 0; j < i; ++j) {
      if (c.network_overrides[j].first == iface_id) return make_error(fmt::format("Two network overrides for `{}`.", iface_id));
    }
    auto it = std::find_if(devices.begin(), devices.end(),
                           [&](const VirtioSavedState& d) { return d.device_type == kVirtioNet && d.net_iface_id == iface_id; });
    if (it == devices.end()) {
      return make_error(fmt::format("The network override for `{}` names an interface the snapshot does not have.", iface_id));
    }
    it->net_host_dev_name = host_dev_name;
  }
  if (c.vsock_uds_path) {
    auto it = std::find_if(devices.begin(), devices.end(), [](const VirtioSavedState& d) { return d.device_type == kVirtioVsock; });
    if (it == devices.end()) return make_error("The vsock override is invalid: the snapshot has no vsock device.");
    it->vsock_uds_path = *c.vsock_uds_path;
  }
  return ok_status();
}

std::optional<RateLimiterConfig> limiter_config(const std::optional<RateLimiterSavedState>& l) {
  if (!l) return std::nullopt;
  RateLimiterConfig c;
  auto bucket = [](const TokenBucketSavedState& b) { return TokenBucketConfig{b.size, b.one_time_burst, b.refill_time_ms}; };
  if (l->bandwidth) c.bandwidth = bucket(*l->bandwidth);
  if (l->ops) c.ops = bucket(*l->ops);
  return c;
}

}  // namespace

Status Vmm::snapshot_create(const SnapshotCreateConfig& c) {
  if (!started()) return make_error("The requested operation is not supported before starting the microVM.");
  const int64_t t0 = monotonic_us();
  // vCPUs are parked; the device thread could still move a frame into guest
  // memory or serve a timer between the device records and the memory file.
  auto devices_held = vm_->hold_devices();
  KINDLING_TRY(state, vm_->capture_state());
  // Memory first: a snapshot file only ever exists beside a complete memory file.
  if (auto s = vm_->write_memory_file(c.mem_file_path); !s) return s;
  if (auto s = write_file(c.snapshot_path, encode_snapshot(state)); !s) return s;
  opts_.metrics->snapshot_create_us.store(monotonic_us() - t0);
  log_info("snapshot created: {} (memory {}) in {} us", c.snapshot_path, c.mem_file_path, monotonic_us() - t0);
  return ok_status();
}

Status Vmm::snapshot_load(const SnapshotLoadConfig& c) {
  const int64_t t0 = monotonic_us();
  if (started()) return make_error("Loading a microVM snapshot is not allowed after starting the microVM.");
  if (resources_.boot_source || machine_config_set_ || resources_.cpu_template || !resources_.drives.empty() ||
      !resources_.network_interfaces.empty() || resources_.vsock || resources_.entropy) {
    return make_error("Loading a microVM snapshot is not allowed after configuring boot-specific resources.");
  }
  // The file is hostile input: bounded read, then the decoder checks the rest.
  KINDLING_TRY(bytes, read_file_bounded(c.snapshot_path, 40 + kSnapshotMaxBodyBytes, "snapshot"));
  KINDLING_TRY(state, decode_snapshot(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
  const CpuIdentity here = host_cpu_identity();
  if (!(state.machine.cpu == here)) {
    return make_error(fmt::format("The snapshot was taken on another CPU ({}); this host is {}. Restoring it here is refused.",
                                  describe(state.machine.cpu), describe(here)));
  }
  if (auto s = apply_overrides(c, state.virtio); !s) return s;

  RestoreMemory memory;
  memory.kind = c.backend == SnapshotLoadConfig::Backend::kUffd ? RestoreMemory::Kind::kUffd : RestoreMemory::Kind::kFilePrivate;
  memory.file.reset(::open(c.backend_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!memory.file.valid()) return make_error(fmt::format("Cannot open the memory file: {} ({})", std::strerror(errno), c.backend_path));
  struct stat st {};
  if (::fstat(memory.file.get(), &st) != 0 || !S_ISREG(st.st_mode)) return make_error(fmt::format("The memory file is not a regular file ({})", c.backend_path));
  // A short file would fault the guest (SIGBUS in a File mapping) on its missing tail.
  if (static_cast<uint64_t>(st.st_size) != state.machine.mem_bytes) {
    return make_error(fmt::format("The memory file is {} bytes but the snapshot's guest has {} (truncated or not this snapshot's) ({})",
                                  st.st_size, state.machine.mem_bytes, c.backend_path));
  }
  if (c.hot_pages_path) {
    const uint64_t page = state.machine.huge_pages ? (2u << 20) : 4096u;
    KINDLING_TRY(hot, read_hot_pages(*c.hot_pages_path, state.machine.mem_bytes / page));
    memory.uffd.prefetch_pages = std::move(hot);
  }
  memory.uffd.record = c.record_hot_pages;
  KINDLING_TRY(serial_fd, open_serial_out());
  KINDLING_TRY(vm, MicroVm::restore(state, std::move(memory), serial_fd, *opts_.metrics, make_hooks(), take_prepared_platform()));
  vm_ = std::move(vm);
  recording_hot_pages_ = c.record_hot_pages;
  resources_.machine.vcpu_count = state.machine.vcpu_count;
  resources_.machine.mem_size_mib = state.machine.mem_bytes >> 20;
  resources_.machine.huge_pages = state.machine.huge_pages ? "2M" : "None";
  // GET /vm/config shows the restored devices (root-device flag and
  // partuuid are boot-time settings a snapshot does not carry).
  for (const VirtioSavedState& d : state.virtio) {
    if (d.device_type == kVirtioBlock) {
      DriveConfig drive;
      drive.drive_id = d.name.substr(std::string("block:").size());
      drive.path_on_host = d.block_path;
      drive.is_read_only = d.block_read_only;
      drive.cache_type = d.block_flush ? "Writeback" : "Unsafe";
      drive.rate_limiter = limiter_config(d.limiters[0]);
      resources_.drives.push_back(std::move(drive));
    } else if (d.device_type == kVirtioEntropy) {
      resources_.entropy = EntropyConfig{limiter_config(d.limiters[0])};
    } else if (d.device_type == kVirtioNet) {
      NetworkInterfaceConfig n;
      n.iface_id = d.net_iface_id;
      n.host_dev_name = d.net_host_dev_name;  // after any override
      if (d.net_mac) {
        const auto& m = *d.net_mac;
        n.guest_mac = fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
      }
      n.rx_rate_limiter = limiter_config(d.limiters[0]);
      n.tx_rate_limiter = limiter_config(d.limiters[1]);
      resources_.network_interfaces.push_back(std::move(n));
    } else if (d.device_type == kVirtioVsock) {
      resources_.vsock = VsockConfig{d.vsock_guest_cid, d.vsock_uds_path};
    }
  }
  vm_->start(!c.resume_vm);
  opts_.metrics->snapshot_load_to_running_us.store(monotonic_us() - t0);
  log_info("snapshot loaded from {} in {} us ({})", c.snapshot_path, monotonic_us() - t0, c.resume_vm ? "running" : "paused");
  return ok_status();
}

Status Vmm::save_hot_pages(const std::string& path) {
  if (!started() || !recording_hot_pages_) return make_error("No restore is recording hot pages (load with mem_backend.record_hot_pages).");
  return write_hot_pages(path, vm_->recorded_hot_pages());
}

}  // namespace kindling::vmm
