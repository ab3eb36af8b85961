// Typed, validated VM configuration. The API and --config-file both parse
// JSON into these structs here, once, at the edge; the builder (microvm.cpp)
// only ever sees validated values, and never JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "vmm/arch/x86/cpu_template.hpp"

#include <nlohmann/json.hpp>

namespace kindling::vmm {

inline constexpr uint32_t kMaxVcpuCount = 32;
// An absurd size is refused before any mmap: 1 TiB is far beyond any host here.
inline constexpr uint64_t kMaxMemSizeMib = 1024 * 1024;
inline constexpr char kDefaultBootArgs[] =
    "reboot=k panic=1 pci=off nomodule 8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd";

struct BootSourceConfig {
  std::string kernel_image_path;
  std::optional<std::string> boot_args;
  std::optional<std::string> initrd_path;
};

struct MachineConfig {
  uint32_t vcpu_count = 1;
  uint64_t mem_size_mib = 128;
  bool smt = false;
  std::string cpu_template = "None";
  bool track_dirty_pages = false;
  std::string huge_pages = "None";  // "None" or "2M"
};

struct LoggerConfig {
  std::optional<std::string> log_path;
  std::string level = "Info";
  bool show_level = false;
  bool show_log_origin = false;
  std::optional<std::string> module;
};

struct MetricsConfig {
  std::string metrics_path;
};

struct SerialConfig {
  std::optional<std::string> serial_out_path;
};

// Firecracker's token bucket: `size` tokens, refilled in full every
// `refill_time` ms, plus an initial `one_time_burst`.
struct TokenBucketConfig {
  uint64_t size = 0;
  uint64_t one_time_burst = 0;
  uint64_t refill_time = 0;
};

struct RateLimiterConfig {
  std::optional<TokenBucketConfig> bandwidth;  // bytes
  std::optional<TokenBucketConfig> ops;        // requests
};

struct EntropyConfig {
  std::optional<RateLimiterConfig> rate_limiter;
};

struct DriveConfig {
  std::string drive_id;
  std::string path_on_host;
  bool is_root_device = false;
  bool is_read_only = false;
  std::optional<std::string> partuuid;
  std::string cache_type = "Unsafe";  // "Unsafe" or "Writeback" (flush reaches the disk)
  std::optional<RateLimiterConfig> rate_limiter;
};

struct NetworkInterfaceConfig {
  std::string iface_id;
  std::string host_dev_name;             // an existing tap
  std::optional<std::string> guest_mac;  // "06:00:0a:00:00:02"; absent: the guest picks one
  std::optional<RateLimiterConfig> rx_rate_limiter;  // frames from the tap to the guest
  std::optional<RateLimiterConfig> tx_rate_limiter;  // frames from the guest to the tap
};

struct VsockConfig {
  uint32_t guest_cid = 3;
  std::string uds_path;
};

// At most this many virtio devices: one IOAPIC pin each, from layout::kFirstVirtioIrq to pin 23.
inline constexpr size_t kMaxVirtioDevices = 19;

struct VmResources {
  std::optional<BootSourceConfig> boot_source;
  MachineConfig machine;
  std::optional<CpuTemplate> cpu_template;
  std::optional<std::string> cpu_config_json;  // kept for GET /vm/config
  std::optional<LoggerConfig> logger;
  std::optional<MetricsConfig> metrics;
  SerialConfig serial;
  std::vector<DriveConfig> drives;  // at most one root device, kept first
  std::vector<NetworkInterfaceConfig> network_interfaces;
  std::optional<EntropyConfig> entropy;
  std::optional<VsockConfig> vsock;
};

// PUT /snapshot/create (Full only).
struct SnapshotCreateConfig {
  std::string snapshot_path;
  std::string mem_file_path;
};
// PUT /snapshot/load, as Firecracker; `hot_pages_path` and
// `record_hot_pages_path` (Uffd only) are ours: prefetch a recorded list of
// pages first, or record the pages this restore touches until
// PUT /snapshot/hot-pages saves them.
struct SnapshotLoadConfig {
  enum class Backend { kFile, kUffd };
  std::string snapshot_path;
  Backend backend = Backend::kFile;
  std::string backend_path;
  std::optional<std::string> hot_pages_path;
  bool record_hot_pages = false;
  bool resume_vm = false;
  std::vector<std::pair<std::string, std::string>> network_overrides;  // iface_id -> host_dev_name
  std::optional<std::string> vsock_uds_path;
};

enum class ActionType { kInstanceStart, kSendCtrlAltDel, kFlushMetrics };
enum class VmStateRequest { kPaused, kResumed };

// Each parser takes the request body; errors are Firecracker-style messages.
Result<nlohmann::json> parse_json_body(std::string_view body);
Result<BootSourceConfig> parse_boot_source(const nlohmann::json& j);
// PUT replaces the whole config (absent fields take defaults); PATCH updates.
Result<MachineConfig> parse_machine_config(const nlohmann::json& j, const MachineConfig* base_for_patch);
Result<LoggerConfig> parse_logger(const nlohmann::json& j);
Result<MetricsConfig> parse_metrics(const nlohmann::json& j);
Result<SerialConfig> parse_serial(const nlohmann::json& j);
Result<ActionType> parse_action(const nlohmann::json& j);
Result<VmStateRequest> parse_vm_state(const nlohmann::json& j);
Result<SnapshotCreateConfig> parse_snapshot_create(const nlohmann::json& j);
Result<SnapshotLoadConfig> parse_snapshot_load(const nlohmann::json& j);
// PUT /snapshot/hot-pages {"hot_pages_path"}: where record mode saves its list.
Result<std::string> parse_hot_pages_save(const nlohmann::json& j);
Result<EntropyConfig> parse_entropy(const nlohmann::json& j);
// `path_id` is the {drive_id} of the URL (empty for --config-file entries).
Result<DriveConfig> parse_drive(const nlohmann::json& j, std::string_view path_id);
Result<VsockConfig> parse_vsock(const nlohmann::json& j);
Result<NetworkInterfaceConfig> parse_network_interface(const nlohmann::json& j, std::string_view path_id);
// Adds or replaces (same iface_id).
Status upsert_network_interface(std::vector<NetworkInterfaceConfig>& list, NetworkInterfaceConfig n);
Result<RateLimiterConfig> parse_rate_limiter(const nlohmann::json& j);
// Adds or replaces (same drive_id) a drive; refuses a second root device.
Status upsert_drive(std::vector<DriveConfig>& drives, DriveConfig d);
// A Firecracker --config-file document. `cpu-config` may be a template
// object or a path to one.
Result<VmResources> parse_config_file(std::string_view text);

nlohmann::json to_json(const VmResources& r);

}  // namespace kindling::vmm
