// The VMM's state machine: configuration collected before boot (from the API
// or a config file), then one MicroVm built by InstanceStart and driven by
// pause/resume/actions. Every method runs on the API thread; vCPU threads
// only report the guest's exit through exit_event_fd().
#pragma once

#include <atomic>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "vmm/exit_code.hpp"
#include "vmm/metrics.hpp"
#include "vmm/microvm.hpp"
#include "vmm/vmm_config.hpp"

namespace kindling::vmm {

inline constexpr char kVmmVersion[] = "0.1.0";

class Vmm {
 public:
  struct Options {
    std::string instance_id = "anonymous-instance";
    int default_serial_fd = 1;  // stdout, as Firecracker
    VmmMetrics* metrics = nullptr;
    std::function<void()> vcpu_thread_setup;
    std::function<void()> device_thread_setup;
    bool use_ioeventfd = true;
  };
  explicit Vmm(Options opts);
  ~Vmm();

  // Pre-boot configuration; refused once the VM runs.
  Status set_boot_source(BootSourceConfig c);
  Status set_machine_config(MachineConfig c);
  const MachineConfig& machine_config() const { return resources_.machine; }
  Status set_cpu_config(std::string_view template_json);
  Status set_serial(SerialConfig c);
  Status set_entropy(EntropyConfig c);
  Status set_drive(DriveConfig c);
  Status set_vsock(VsockConfig c);
  Status set_network_interface(NetworkInterfaceConfig c);
  // Allowed at any time, once each (as Firecracker).
  Status set_logger(const LoggerConfig& c);
  Status set_metrics(const MetricsConfig& c);
  Status apply_resources(VmResources r);  // --config-file

  Status instance_start();
  Status send_ctrl_alt_del();
  Status flush_metrics();
  Status pause();
  Status resume();
  // Snapshots (docs/vmm-snapshot.md): create on a paused VM; load on a fresh
  // VMM, before any configuration, instead of InstanceStart.
  Status snapshot_create(const SnapshotCreateConfig& c);
  Status snapshot_load(const SnapshotLoadConfig& c);
  // Record mode: saves the pages the restored guest has touched so far.
  Status save_hot_pages(const std::string& path);

  nlohmann::json instance_info() const;
  nlohmann::json vm_config() const { return to_json(resources_); }
  bool started() const { return vm_ != nullptr; }

  // Readable when the guest has ended the VM; then guest_exit() has the status.
  int exit_event_fd() const { return exit_event_.get(); }
  std::optional<ExitCode> guest_exit() const;
  // Stops the vCPUs and writes the final metrics.
  void shutdown();
  // Starts preparing the platform for the current machine config in the
  // background (see PreparedPlatform); called at startup and on every config change.
  void prepare_platform_ahead();

 private:
  Status refuse_after_start() const;
  Result<int> open_serial_out();
  MicroVmHooks make_hooks();
  void on_guest_exit(ExitCode code);

  std::optional<PreparedPlatform> take_prepared_platform();

  Options opts_;
  std::future<Result<PreparedPlatform>> prepared_;
  uint64_t prepared_mem_bytes_ = 0;
  bool prepared_huge_pages_ = false;
  bool machine_config_set_ = false;
  VmResources resources_;
  std::unique_ptr<MicroVm> vm_;
  UniqueFd serial_fd_;
  UniqueFd metrics_fd_;
  UniqueFd exit_event_;
  std::atomic<int> guest_exit_{-1};
  bool logger_set_ = false;
  bool recording_hot_pages_ = false;
};

}  // namespace kindling::vmm
