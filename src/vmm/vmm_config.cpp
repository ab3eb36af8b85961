#include "vmm/vmm_config.hpp"

#include <fmt/format.h>

#include <strings.h>

#include <cctype>

#include <algorithm>
#include <initializer_list>

#include "vmm/arch/x86/layout.hpp"
#include "vmm/boot/kernel_image.hpp"

namespace kindling::vmm {
namespace {

using nlohmann::json;

Error deserialize_error(const std::string& what) {
  return make_error("An error occurred when deserializing the json body of a request: " + what + ".");
}

std::string field_list(std::initializer_list<const char*> fields) {
  std::string out;
  for (const char* f : fields) {
    if (!out.empty()) out += ", ";
    out += fmt::format("`{}`", f);
  }
  return out;
}

Status only_fields(const json& j, std::initializer_list<const char*> fields) {
  if (!j.is_object()) return deserialize_error("expected a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* f : fields) known = known || it.key() == f;
    if (!known) return deserialize_error(fmt::format("unknown field `{}`, expected one of {}", it.key(), field_list(fields)));
  }
  return ok_status();
}

template <typename T>
Result<T> field(const json& j, const char* name) {
  const json& v = j.at(name);
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return deserialize_error(fmt::format("invalid type for `{}`: expected a string", name));
    return v.get<std::string>();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) return deserialize_error(fmt::format("invalid type for `{}`: expected a boolean", name));
    return v.get<bool>();
  } else {
    if (!v.is_number_unsigned()) return deserialize_error(fmt::format("invalid type for `{}`: expected a non-negative integer", name));
    return v.get<T>();
  }
}

Result<std::optional<std::string>> optional_string(const json& j, const char* name) {
  if (!j.contains(name) || j.at(name).is_null()) return std::optional<std::string>{};
  KINDLING_TRY(s, field<std::string>(j, name));
  return std::optional<std::string>(std::move(s));
}

}  // namespace

Result<json> parse_json_body(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return deserialize_error("malformed JSON");
  return j;
}

Result<BootSourceConfig> parse_boot_source(const json& j) {
  if (auto s = only_fields(j, {"kernel_image_path", "boot_args", "initrd_path"}); !s) return s.error();
  if (!j.contains("kernel_image_path")) return deserialize_error("missing field `kernel_image_path`");
  BootSourceConfig c;
  KINDLING_TRY(kernel, field<std::string>(j, "kernel_image_path"));
  c.kernel_image_path = std::move(kernel);
  KINDLING_TRY(args, optional_string(j, "boot_args"));
  c.boot_args = std::move(args);
  KINDLING_TRY(initrd, optional_string(j, "initrd_path"));
  c.initrd_path = std::move(initrd);
  if (c.boot_args && c.boot_args->size() >= layout::kCmdlineMaxSize) {
    return make_error(fmt::format("The kernel command line is invalid: it is {} bytes long; at most {} are allowed.",
                                  c.boot_args->size(), layout::kCmdlineMaxSize - 1));
  }
  if (c.boot_args && c.boot_args->find('\0') != std::string::npos) {
    return make_error("The kernel command line is invalid: it contains a NUL byte.");
  }
  return c;
}

Result<MachineConfig> parse_machine_config(const json& j, const MachineConfig* base_for_patch) {
  if (auto s = only_fields(j, {"vcpu_count", "mem_size_mib", "smt", "cpu_template", "track_dirty_pages", "huge_pages"}); !s) {
    return s.error();
  }
  if (!base_for_patch) {
    if (!j.contains("vcpu_count")) return deserialize_error("missing field `vcpu_count`");
    if (!j.contains("mem_size_mib")) return deserialize_error("missing field `mem_size_mib`");
  }
  MachineConfig c = base_for_patch ? *base_for_patch : MachineConfig{};
  if (j.contains("vcpu_count")) {
    if (!j["vcpu_count"].is_number_integer()) return deserialize_error("invalid type for `vcpu_count`: expected an integer");
    int64_t n = j["vcpu_count"].get<int64_t>();
    if (n < 1 || n > kMaxVcpuCount) {
      return make_error(fmt::format("The vCPU number is invalid! The vCPU number can only be between 1 and {} (got {}).", kMaxVcpuCount, n));
    }
    c.vcpu_count = static_cast<uint32_t>(n);
  }
  if (j.contains("mem_size_mib")) {
    if (!j["mem_size_mib"].is_number_integer()) return deserialize_error("invalid type for `mem_size_mib`: expected an integer");
    int64_t m = j["mem_size_mib"].get<int64_t>();
    if (m < 1 || static_cast<uint64_t>(m) > kMaxMemSizeMib) {
      return make_error(fmt::format("The memory size (MiB) is invalid: it must be between 1 and {} (got {}).", kMaxMemSizeMib, m));
    }
    c.mem_size_mib = static_cast<uint64_t>(m);
  }
  if (j.contains("smt")) {
    KINDLING_TRY(smt, field<bool>(j, "smt"));
    if (smt) return make_error("Enabling simultaneous multithreading is not supported by kindling-vmm.");
    c.smt = smt;
  }
  if (j.contains("cpu_template")) {
    KINDLING_TRY(t, field<std::string>(j, "cpu_template"));
    if (t != "None") return make_error(fmt::format("The CPU template `{}` is not supported; use \"None\" and PUT /cpu-config for a custom template.", t));
    c.cpu_template = t;
  }
  if (j.contains("track_dirty_pages")) {
    KINDLING_TRY(d, field<bool>(j, "track_dirty_pages"));
    c.track_dirty_pages = d;
  }
  if (j.contains("huge_pages")) {
    KINDLING_TRY(h, field<std::string>(j, "huge_pages"));
    if (h != "None" && h != "2M") return make_error(fmt::format("Invalid huge pages configuration `{}`: expected \"None\" or \"2M\".", h));
    c.huge_pages = h;
  }
  if (c.huge_pages == "2M" && c.mem_size_mib % 2 != 0) {
    return make_error("The memory size (MiB) is invalid: with 2M huge pages it must be a multiple of 2.");
  }
  return c;
}

Result<LoggerConfig> parse_logger(const json& j) {
  if (auto s = only_fields(j, {"log_path", "level", "show_level", "show_log_origin", "module"}); !s) return s.error();
  LoggerConfig c;
  KINDLING_TRY(path, optional_string(j, "log_path"));
  c.log_path = std::move(path);
  if (j.contains("level")) {
    KINDLING_TRY(level, field<std::string>(j, "level"));
    static const char* const kLevels[] = {"Off", "Error", "Warning", "Warn", "Info", "Debug", "Trace"};
    bool known = false;
    for (const char* l : kLevels) known = known || strcasecmp(l, level.c_str()) == 0;
    if (!known) return make_error(fmt::format("Invalid log level `{}`: expected Off, Error, Warning, Info, Debug or Trace.", level));
    c.level = level;
  }
  if (j.contains("show_level")) {
    KINDLING_TRY(v, field<bool>(j, "show_level"));
    c.show_level = v;
  }
  if (j.contains("show_log_origin")) {
    KINDLING_TRY(v, field<bool>(j, "show_log_origin"));
    c.show_log_origin = v;
  }
  KINDLING_TRY(module, optional_string(j, "module"));
  c.module = std::move(module);
  return c;
}

Result<MetricsConfig> parse_metrics(const json& j) {
  if (auto s = only_fields(j, {"metrics_path"}); !s) return s.error();
  if (!j.contains("metrics_path")) return deserialize_error("missing field `metrics_path`");
  KINDLING_TRY(path, field<std::string>(j, "metrics_path"));
  return MetricsConfig{std::move(path)};
}

Result<SerialConfig> parse_serial(const json& j) {
  if (auto s = only_fields(j, {"serial_out_path"}); !s) return s.error();
  KINDLING_TRY(path, optional_string(j, "serial_out_path"));
  return SerialConfig{std::move(path)};
}

Result<ActionType> parse_action(const json& j) {
  if (auto s = only_fields(j, {"action_type"}); !s) return s.error();
  if (!j.contains("action_type")) return deserialize_error("missing field `action_type`");
  KINDLING_TRY(a, field<std::string>(j, "action_type"));
  if (a == "InstanceStart") return ActionType::kInstanceStart;
  if (a == "SendCtrlAltDel") return ActionType::kSendCtrlAltDel;
  if (a == "FlushMetrics") return ActionType::kFlushMetrics;
  return deserialize_error(fmt::format("unknown variant `{}`, expected one of `FlushMetrics`, `InstanceStart`, `SendCtrlAltDel`", a));
}

Result<VmStateRequest> parse_vm_state(const json& j) {
  if (auto s = only_fields(j, {"state"}); !s) return s.error();
  if (!j.contains("state")) return deserialize_error("missing field `state`");
  KINDLING_TRY(st, field<std::string>(j, "state"));
  if (st == "Paused") return VmStateRequest::kPaused;
  if (st == "Resumed") return VmStateRequest::kResumed;
  return deserialize_error(fmt::format("unknown variant `{}`, expected `Paused` or `Resumed`", st));
}

namespace {

Result<TokenBucketConfig> parse_token_bucket(const json& j, const char* which) {
  if (auto s = only_fields(j, {"size", "one_time_burst", "refill_time"}); !s) return s.error();
  if (!j.contains("size")) return deserialize_error("missing field `size`");
  if (!j.contains("refill_time")) return deserialize_error("missing field `refill_time`");
  TokenBucketConfig b;
  KINDLING_TRY(size, field<uint64_t>(j, "size"));
  KINDLING_TRY(refill, field<uint64_t>(j, "refill_time"));
  b.size = size;
  b.refill_time = refill;
  if (j.contains("one_time_burst") && !j["one_time_burst"].is_null()) {
    KINDLING_TRY(burst, field<uint64_t>(j, "one_time_burst"));
    b.one_time_burst = burst;
  }
  // Firecracker treats a zero size or refill time as "no limit"; we refuse
  // it so a typo never silently disables a limit.
  if (b.size == 0 || b.refill_time == 0) {
    return make_error(fmt::format("Invalid rate limiter `{}` bucket: `size` and `refill_time` must be greater than 0.", which));
  }
  return b;
}

}  // namespace

Result<RateLimiterConfig> parse_rate_limiter(const json& j) {
  if (auto s = only_fields(j, {"bandwidth", "ops"}); !s) return s.error();
  RateLimiterConfig r;
  if (j.contains("bandwidth") && !j["bandwidth"].is_null()) {
    KINDLING_TRY(b, parse_token_bucket(j["bandwidth"], "bandwidth"));
    r.bandwidth = b;
  }
  if (j.contains("ops") && !j["ops"].is_null()) {
    KINDLING_TRY(o, parse_token_bucket(j["ops"], "ops"));
    r.ops = o;
  }
  return r;
}

Result<EntropyConfig> parse_entropy(const json& j) {
  if (auto s = only_fields(j, {"rate_limiter"}); !s) return s.error();
  EntropyConfig c;
  if (j.contains("rate_limiter") && !j["rate_limiter"].is_null()) {
    KINDLING_TRY(r, parse_rate_limiter(j["rate_limiter"]));
    c.rate_limiter = r;
  }
  return c;
}

Result<DriveConfig> parse_drive(const json& j, std::string_view path_id) {
  if (auto s = only_fields(j, {"drive_id", "path_on_host", "is_root_device", "is_read_only", "partuuid", "cache_type",
                               "rate_limiter", "io_engine", "socket"});
      !s) {
    return s.error();
  }
  for (const char* f : {"drive_id", "is_root_device"}) {
    if (!j.contains(f)) return deserialize_error(fmt::format("missing field `{}`", f));
  }
  DriveConfig d;
  KINDLING_TRY(id, field<std::string>(j, "drive_id"));
  d.drive_id = std::move(id);
  if (!path_id.empty() && d.drive_id != path_id) {
    return make_error("The id from the path does not match the id from the body!");
  }
  if (d.drive_id.empty() || d.drive_id.size() > 64 ||
      d.drive_id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != std::string::npos) {
    return make_error(fmt::format("Invalid drive id `{}`: use 1 to 64 characters from [A-Za-z0-9_].", d.drive_id));
  }
  if (j.contains("socket") && !j["socket"].is_null()) {
    return make_error("vhost-user drives (`socket`) are not supported by kindling-vmm.");
  }
  if (!j.contains("path_on_host")) return deserialize_error("missing field `path_on_host`");
  KINDLING_TRY(path, field<std::string>(j, "path_on_host"));
  d.path_on_host = std::move(path);
  KINDLING_TRY(root, field<bool>(j, "is_root_device"));
  d.is_root_device = root;
  if (j.contains("is_read_only") && !j["is_read_only"].is_null()) {
    KINDLING_TRY(ro, field<bool>(j, "is_read_only"));
    d.is_read_only = ro;
  }
  KINDLING_TRY(partuuid, optional_string(j, "partuuid"));
  d.partuuid = std::move(partuuid);
  if (j.contains("cache_type")) {
    KINDLING_TRY(ct, field<std::string>(j, "cache_type"));
    if (ct != "Unsafe" && ct != "Writeback") {
      return deserialize_error(fmt::format("unknown variant `{}`, expected `Unsafe` or `Writeback`", ct));
    }
    d.cache_type = ct;
  }
  if (j.contains("io_engine")) {
    KINDLING_TRY(engine, field<std::string>(j, "io_engine"));
    if (engine != "Sync") return make_error(fmt::format("The block io_engine `{}` is not supported; only `Sync`.", engine));
  }
  if (j.contains("rate_limiter") && !j["rate_limiter"].is_null()) {
    KINDLING_TRY(r, parse_rate_limiter(j["rate_limiter"]));
    d.rate_limiter = r;
  }
  return d;
}

Status upsert_drive(std::vector<DriveConfig>& drives, DriveConfig d) {
  for (auto& existing : drives) {
    if (existing.drive_id != d.drive_id && existing.is_root_device && d.is_root_device) {
      return make_error("A root block device already exists!");
    }
  }
  for (auto& existing : drives) {
    if (existing.drive_id == d.drive_id) {
      existing = std::move(d);
      std::stable_partition(drives.begin(), drives.end(), [](const DriveConfig& x) { return x.is_root_device; });
      return ok_status();
    }
  }
  if (drives.size() >= kMaxVirtioDevices - 2) return make_error("Too many block devices.");
  drives.push_back(std::move(d));
  // The root device is the first one, so it is /dev/vda in the guest.
  std::stable_partition(drives.begin(), drives.end(), [](const DriveConfig& x) { return x.is_root_device; });
  return ok_status();
}

Result<SnapshotCreateConfig> parse_snapshot_create(const json& j) {
  if (auto s = only_fields(j, {"snapshot_type", "snapshot_path", "mem_file_path"}); !s) return s.error();
  if (!j.contains("snapshot_path")) return deserialize_error("missing field `snapshot_path`");
  if (!j.contains("mem_file_path")) return deserialize_error("missing field `mem_file_path`");
  if (j.contains("snapshot_type")) {
    KINDLING_TRY(t, field<std::string>(j, "snapshot_type"));
    if (t == "Diff") return make_error("Diff snapshots are not supported; use snapshot_type `Full`.");
    if (t != "Full") return deserialize_error(fmt::format("unknown variant `{}`, expected `Full` or `Diff`", t));
  }
  SnapshotCreateConfig c;
  KINDLING_TRY(sp, field<std::string>(j, "snapshot_path"));
  KINDLING_TRY(mp, field<std::string>(j, "mem_file_path"));
  if (sp.empty() || mp.empty()) return make_error("The snapshot and memory file paths must not be empty.");
  if (sp == mp) return make_error("The snapshot and memory file paths must differ.");
  c.snapshot_path = std::move(sp);
  c.mem_file_path = std::move(mp);
  return c;
}

Result<SnapshotLoadConfig> parse_snapshot_load(const json& j) {
  if (auto s = only_fields(j, {"snapshot_path", "mem_backend", "resume_vm", "network_overrides", "vsock_override", "enable_diff_snapshots", "track_dirty_pages"}); !s) {
    return s.error();
  }
  if (!j.contains("snapshot_path")) return deserialize_error("missing field `snapshot_path`");
  if (!j.contains("mem_backend")) return deserialize_error("missing field `mem_backend` (the deprecated `mem_file_path` is not supported)");
  SnapshotLoadConfig c;
  KINDLING_TRY(sp, field<std::string>(j, "snapshot_path"));
  if (sp.empty()) return make_error("The snapshot path must not be empty.");
  c.snapshot_path = std::move(sp);
  for (const char* flag : {"enable_diff_snapshots", "track_dirty_pages"}) {
    if (!j.contains(flag)) continue;
    KINDLING_TRY(on, field<bool>(j, flag));
    if (on) return make_error(fmt::format("`{}` is not supported: only Full snapshots are.", flag));
  }
  if (j.contains("resume_vm")) {
    KINDLING_TRY(r, field<bool>(j, "resume_vm"));
    c.resume_vm = r;
  }
  const json& mb = j.at("mem_backend");
  if (auto s = only_fields(mb, {"backend_type", "backend_path", "hot_pages_path", "record_hot_pages"}); !s) return s.error();
  if (!mb.contains("backend_type")) return deserialize_error("missing field `backend_type`");
  if (!mb.contains("backend_path")) return deserialize_error("missing field `backend_path`");
  KINDLING_TRY(type, field<std::string>(mb, "backend_type"));
  if (type == "File") {
    c.backend = SnapshotLoadConfig::Backend::kFile;
  } else if (type == "Uffd") {
    c.backend = SnapshotLoadConfig::Backend::kUffd;
  } else {
    return deserialize_error(fmt::format("unknown variant `{}`, expected `File` or `Uffd`", type));
  }
  KINDLING_TRY(bp, field<std::string>(mb, "backend_path"));
  if (bp.empty()) return make_error("The memory backend path must not be empty.");
  c.backend_path = std::move(bp);
  KINDLING_TRY(hot, optional_string(mb, "hot_pages_path"));
  c.hot_pages_path = std::move(hot);
  if (mb.contains("record_hot_pages")) {
    KINDLING_TRY(rec, field<bool>(mb, "record_hot_pages"));
    c.record_hot_pages = rec;
  }
  if ((c.hot_pages_path || c.record_hot_pages) && c.backend != SnapshotLoadConfig::Backend::kUffd) {
    return make_error("Hot-page prefetch and recording need the `Uffd` memory backend.");
  }
  if (j.contains("network_overrides")) {
    const json& list = j.at("network_overrides");
    if (!list.is_array()) return deserialize_error("invalid type for `network_overrides`: expected a list");
    if (list.size() > 8) return make_error("At most 8 network overrides are allowed.");
    for (const json& o : list) {
      if (auto s = only_fields(o, {"iface_id", "host_dev_name"}); !s) return s.error();
      if (!o.contains("iface_id") || !o.contains("host_dev_name")) return deserialize_error("a network override needs `iface_id` and `host_dev_name`");
      KINDLING_TRY(id, field<std::string>(o, "iface_id"));
      KINDLING_TRY(dev, field<std::string>(o, "host_dev_name"));
      if (dev.empty() || dev.size() > 15) return make_error(fmt::format("Invalid host_dev_name `{}`: a tap name has 1 to 15 characters.", dev));
      c.network_overrides.emplace_back(std::move(id), std::move(dev));
    }
  }
  if (j.contains("vsock_override")) {
    const json& v = j.at("vsock_override");
    if (auto s = only_fields(v, {"uds_path"}); !s) return s.error();
    if (!v.contains("uds_path")) return deserialize_error("missing field `uds_path`");
    KINDLING_TRY(path, field<std::string>(v, "uds_path"));
    if (path.empty() || path.size() > 100) return make_error("Invalid vsock uds_path: it must be 1 to 100 bytes long.");
    c.vsock_uds_path = std::move(path);
  }
  return c;
}

Result<std::string> parse_hot_pages_save(const json& j) {
  if (auto s = only_fields(j, {"hot_pages_path"}); !s) return s.error();
  if (!j.contains("hot_pages_path")) return deserialize_error("missing field `hot_pages_path`");
  KINDLING_TRY(p, field<std::string>(j, "hot_pages_path"));
  if (p.empty()) return make_error("The hot-page list path must not be empty.");
  return p;
}

Result<VsockConfig> parse_vsock(const json& j) {
  if (auto s = only_fields(j, {"guest_cid", "uds_path", "vsock_id"}); !s) return s.error();
  if (!j.contains("guest_cid")) return deserialize_error("missing field `guest_cid`");
  if (!j.contains("uds_path")) return deserialize_error("missing field `uds_path`");
  VsockConfig v;
  KINDLING_TRY(cid, field<uint64_t>(j, "guest_cid"));
  if (cid < 3 || cid > 0xffffffffu) return make_error(fmt::format("Invalid vsock guest CID {}: it must be between 3 and 2^32-1.", cid));
  v.guest_cid = static_cast<uint32_t>(cid);
  KINDLING_TRY(path, field<std::string>(j, "uds_path"));
  if (path.empty() || path.size() > 100) return make_error("Invalid vsock uds_path: it must be 1 to 100 bytes long.");
  v.uds_path = std::move(path);
  return v;
}

Result<NetworkInterfaceConfig> parse_network_interface(const json& j, std::string_view path_id) {
  if (auto s = only_fields(j, {"iface_id", "host_dev_name", "guest_mac", "rx_rate_limiter", "tx_rate_limiter"}); !s) {
    return s.error();
  }
  if (!j.contains("iface_id")) return deserialize_error("missing field `iface_id`");
  if (!j.contains("host_dev_name")) return deserialize_error("missing field `host_dev_name`");
  NetworkInterfaceConfig n;
  KINDLING_TRY(id, field<std::string>(j, "iface_id"));
  n.iface_id = std::move(id);
  if (!path_id.empty() && n.iface_id != path_id) return make_error("The id from the path does not match the id from the body!");
  if (n.iface_id.empty() || n.iface_id.size() > 64) return make_error("Invalid iface_id: use 1 to 64 characters.");
  KINDLING_TRY(dev, field<std::string>(j, "host_dev_name"));
  if (dev.empty() || dev.size() > 15) return make_error(fmt::format("Invalid host_dev_name `{}`: 1 to 15 characters.", dev));
  n.host_dev_name = std::move(dev);
  KINDLING_TRY(mac, optional_string(j, "guest_mac"));
  if (mac) {
    bool ok = mac->size() == 17;
    for (size_t i = 0; ok && i < 17; ++i) ok = i % 3 == 2 ? (*mac)[i] == ':' : std::isxdigit(static_cast<unsigned char>((*mac)[i])) != 0;
    if (!ok) return make_error(fmt::format("Invalid guest MAC address `{}`.", *mac));
  }
  n.guest_mac = std::move(mac);
  if (j.contains("rx_rate_limiter") && !j["rx_rate_limiter"].is_null()) {
    KINDLING_TRY(r, parse_rate_limiter(j["rx_rate_limiter"]));
    n.rx_rate_limiter = r;
  }
  if (j.contains("tx_rate_limiter") && !j["tx_rate_limiter"].is_null()) {
    KINDLING_TRY(r, parse_rate_limiter(j["tx_rate_limiter"]));
    n.tx_rate_limiter = r;
  }
  return n;
}

Status upsert_network_interface(std::vector<NetworkInterfaceConfig>& list, NetworkInterfaceConfig n) {
  for (auto& existing : list) {
    if (existing.iface_id == n.iface_id) {
      existing = std::move(n);
      return ok_status();
    }
    if (existing.host_dev_name == n.host_dev_name) {
      return make_error(fmt::format("The host device `{}` is already used by interface `{}`.", n.host_dev_name, existing.iface_id));
    }
  }
  if (list.size() >= 8) return make_error("Too many network interfaces.");
  list.push_back(std::move(n));
  return ok_status();
}

Result<VmResources> parse_config_file(std::string_view text) {
  KINDLING_TRY(j, parse_json_body(text));
  if (auto s = only_fields(j, {"boot-source", "machine-config", "cpu-config", "logger", "metrics", "serial",
                               "drives", "network-interfaces", "vsock", "entropy"});
      !s) {
    return s.error();
  }
  VmResources r;
  if (!j.contains("boot-source")) return make_error("Cannot start microvm without kernel configuration: `boot-source` is missing.");
  KINDLING_TRY(boot, parse_boot_source(j["boot-source"]));
  r.boot_source = std::move(boot);
  if (j.contains("machine-config")) {
    KINDLING_TRY(mc, parse_machine_config(j["machine-config"], nullptr));
    r.machine = mc;
  }
  if (j.contains("cpu-config")) {
    std::string tmpl_text;
    if (j["cpu-config"].is_string()) {
      KINDLING_TRY(t, read_file_bounded(j["cpu-config"].get<std::string>(), 1 << 20, "CPU template"));
      tmpl_text = std::move(t);
    } else {
      tmpl_text = j["cpu-config"].dump();
    }
    KINDLING_TRY(tmpl, parse_cpu_template(tmpl_text));
    r.cpu_template = std::move(tmpl);
    r.cpu_config_json = tmpl_text;
  }
  if (j.contains("logger")) {
    KINDLING_TRY(l, parse_logger(j["logger"]));
    r.logger = std::move(l);
  }
  if (j.contains("metrics")) {
    KINDLING_TRY(m, parse_metrics(j["metrics"]));
    r.metrics = std::move(m);
  }
  if (j.contains("serial")) {
    KINDLING_TRY(s, parse_serial(j["serial"]));
    r.serial = std::move(s);
  }
  if (j.contains("drives") && !j["drives"].is_null()) {
    if (!j["drives"].is_array()) return deserialize_error("invalid type for `drives`: expected an array");
    for (const auto& d : j["drives"]) {
      KINDLING_TRY(drive, parse_drive(d, ""));
      if (auto s = upsert_drive(r.drives, std::move(drive)); !s) return s.error();
    }
  }
  if (j.contains("network-interfaces") && !j["network-interfaces"].is_null()) {
    if (!j["network-interfaces"].is_array()) return deserialize_error("invalid type for `network-interfaces`: expected an array");
    for (const auto& n : j["network-interfaces"]) {
      KINDLING_TRY(iface, parse_network_interface(n, ""));
      if (auto s = upsert_network_interface(r.network_interfaces, std::move(iface)); !s) return s.error();
    }
  }
  if (j.contains("entropy") && !j["entropy"].is_null()) {
    KINDLING_TRY(e, parse_entropy(j["entropy"]));
    r.entropy = e;
  }
  if (j.contains("vsock") && !j["vsock"].is_null()) {
    KINDLING_TRY(v, parse_vsock(j["vsock"]));
    r.vsock = v;
  }
  return r;
}

json to_json(const VmResources& r) {
  json out = json::object();
  if (r.boot_source) {
    json b = {{"kernel_image_path", r.boot_source->kernel_image_path}};
    b["boot_args"] = r.boot_source->boot_args ? json(*r.boot_source->boot_args) : json(nullptr);
    b["initrd_path"] = r.boot_source->initrd_path ? json(*r.boot_source->initrd_path) : json(nullptr);
    out["boot-source"] = b;
  }
  out["machine-config"] = {{"vcpu_count", r.machine.vcpu_count}, {"mem_size_mib", r.machine.mem_size_mib},
                           {"smt", r.machine.smt}, {"cpu_template", r.machine.cpu_template},
                           {"track_dirty_pages", r.machine.track_dirty_pages}, {"huge_pages", r.machine.huge_pages}};
  if (r.cpu_config_json) {
    json t = json::parse(*r.cpu_config_json, nullptr, false);
    if (!t.is_discarded()) out["cpu-config"] = t;
  }
  if (r.logger) {
    out["logger"] = {{"log_path", r.logger->log_path ? json(*r.logger->log_path) : json(nullptr)},
                     {"level", r.logger->level}, {"show_level", r.logger->show_level},
                     {"show_log_origin", r.logger->show_log_origin}};
  }
  if (r.metrics) out["metrics"] = {{"metrics_path", r.metrics->metrics_path}};
  if (r.serial.serial_out_path) out["serial"] = {{"serial_out_path", *r.serial.serial_out_path}};
  auto limiter_json = [](const std::optional<RateLimiterConfig>& r) -> json {
    if (!r) return nullptr;
    auto bucket = [](const std::optional<TokenBucketConfig>& b) -> json {
      if (!b) return nullptr;
      return {{"size", b->size}, {"one_time_burst", b->one_time_burst}, {"refill_time", b->refill_time}};
    };
    return {{"bandwidth", bucket(r->bandwidth)}, {"ops", bucket(r->ops)}};
  };
  out["drives"] = json::array();
  for (const auto& d : r.drives) {
    out["drives"].push_back({{"drive_id", d.drive_id}, {"path_on_host", d.path_on_host},
                             {"is_root_device", d.is_root_device}, {"is_read_only", d.is_read_only},
                             {"partuuid", d.partuuid ? json(*d.partuuid) : json(nullptr)}, {"cache_type", d.cache_type},
                             {"io_engine", "Sync"}, {"rate_limiter", limiter_json(d.rate_limiter)}});
  }
  out["network-interfaces"] = json::array();
  for (const auto& n : r.network_interfaces) {
    out["network-interfaces"].push_back({{"iface_id", n.iface_id}, {"host_dev_name", n.host_dev_name},
                                         {"guest_mac", n.guest_mac ? json(*n.guest_mac) : json(nullptr)},
                                         {"rx_rate_limiter", limiter_json(n.rx_rate_limiter)},
                                         {"tx_rate_limiter", limiter_json(n.tx_rate_limiter)}});
  }
  if (r.entropy) out["entropy"] = {{"rate_limiter", limiter_json(r.entropy->rate_limiter)}};
  if (r.vsock) out["vsock"] = {{"guest_cid", r.vsock->guest_cid}, {"uds_path", r.vsock->uds_path}};
  return out;
}

}  // namespace kindling::vmm
