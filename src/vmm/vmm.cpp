#include "vmm/vmm.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "vmm/boot/kernel_image.hpp"
#include "vmm/logger.hpp"

namespace kindling::vmm {
namespace {

const char* kNotAfterStart = "The requested operation is not supported after starting the microVM.";
const char* kNotBeforeStart = "The requested operation is not supported before starting the microVM.";

// On the preparing thread: the platform prepared before, if it still fits
// the memory wanted, else a fresh one; with memory once its size is known.
Result<PreparedPlatform> reuse_or_prepare_platform(std::future<Result<PreparedPlatform>> previous, uint64_t mem_bytes,
                                                   bool huge, bool with_memory) {
  Result<PreparedPlatform> p = previous.valid() ? previous.get() : Result<PreparedPlatform>(Error{"nothing prepared"});
  if (p && p->memory && !p->has_memory(mem_bytes, huge)) {
    MicroVm::discard_in_background(std::move(*p));
    p = Error{"discarded"};
  }
  if (!p) p = MicroVm::prepare_platform();
  if (!p) return p;
  if (with_memory && !p->memory) {
    if (auto s = MicroVm::prepare_memory(*p, mem_bytes, huge); !s) return s.error();
  }
  return p;
}

}  // namespace

Vmm::Vmm(Options opts) : opts_(std::move(opts)), exit_event_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Vmm::~Vmm() { shutdown(); }

Status Vmm::refuse_after_start() const {
  if (started()) return make_error(kNotAfterStart);
  return ok_status();
}

Status Vmm::set_boot_source(BootSourceConfig c) {
  KINDLING_TRY(not_started, refuse_after_start());
  (void)not_started;
  // Like Firecracker, check the files now so a typo fails at the PUT, not at boot.
  UniqueFd kernel(::open(c.kernel_image_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!kernel.valid()) return make_error(fmt::format("The kernel file cannot be opened: {} ({})", std::strerror(errno), c.kernel_image_path));
  if (c.initrd_path) {
    UniqueFd initrd(::open(c.initrd_path->c_str(), O_RDONLY | O_CLOEXEC));
    if (!initrd.valid()) return make_error(fmt::format("The initrd file cannot be opened due to invalid path or invalid permissions. {} ({})", std::strerror(errno), *c.initrd_path));
  }
  resources_.boot_source = std::move(c);
  return ok_status();
}

Status Vmm::set_machine_config(MachineConfig c) {
  KINDLING_TRY(not_started, refuse_after_start());
  (void)not_started;
  resources_.machine = std::move(c);
  machine_config_set_ = true;
  prepare_platform_ahead();
  return ok_status();
}

void Vmm::prepare_platform_ahead() {
  const uint64_t mem_bytes = resources_.machine.mem_size_mib << 20;
  const bool huge = resources_.machine.huge_pages == "2M";
  if (prepared_.valid() && prepared_mem_bytes_ == mem_bytes && prepared_huge_pages_ == huge) return;
  // Before a machine config exists only the VM itself is prepared; memory
  // follows once its size is known. A platform with the wrong memory size is
  // discarded off the API thread (destroying a VM is slow on nested KVM).
  const bool with_memory = machine_config_set_;
  try {
    prepared_ = std::async(std::launch::async, [old = std::move(prepared_), mem_bytes, huge, with_memory]() mutable {
      return reuse_or_prepare_platform(std::move(old), mem_bytes, huge, with_memory);
    });
    prepared_mem_bytes_ = with_memory ? mem_bytes : 0;
    prepared_huge_pages_ = huge;
  } catch (const std::system_error& e) {
    log_warn("cannot prepare the VM platform ahead ({}); InstanceStart will do it", e.what());
  }
}

std::optional<PreparedPlatform> Vmm::take_prepared_platform() {
  if (!prepared_.valid()) return std::nullopt;
  const int64_t t0 = monotonic_us();
  auto p = prepared_.get();
  log_debug("InstanceStart waited {} us for the platform prepared ahead", monotonic_us() - t0);
  if (!p) {
    log_warn("preparing the VM platform ahead failed: {}; retrying at InstanceStart", p.error().message);
    return std::nullopt;
  }
  return std::move(*p);
}

Status Vmm::set_cpu_config(std::string_view template_json) {
  KINDLING_TRY(not_started, refuse_after_start());
  (void)not_started;
  KINDLING_TRY(t, parse_cpu_template(template_json));
  resources_.cpu_template = std::move(t);
  resources_.cpu_config_json = std::string(template_json);
  return ok_status();
}

Status Vmm::set_serial(SerialConfig c) {
  KINDLING_TRY(not_started, refuse_after_start());
  (void)not_started;
  resources_.serial = std::move(c);
  return ok_status();
}

Status Vmm::set_entropy(EntropyConfig c) {
  KINDLING_TRY(not_started, refuse_after_start());
  (void)not_started;
  resources_.entropy = std::move(c);
  return ok_status();
}

Status Vmm::set_drive(DriveConfig c) {
  KINDLING_TRY(not_started, refuse_after_start());
  (void)not_started;
  // As Firecracker: the backing file must open now, so a typo fails at the PUT.
  UniqueFd f(::open(c.path_on_host.c_str(), (c.is_read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (!f.valid()) {
    return make_error(fmt::format("Unable to open or create the backing file: {} ({})", std::strerror(errno), c.path_on_host));
  }
  return upsert_drive(resources_.drives, std::move(c));
}

Status Vmm::set_network_interface(NetworkInterfaceConfig c) {
  KINDLING_TRY(not_started, refuse_after_start());
  (void)not_started;
  return upsert_network_interface(resources_.network_interfaces, std::move(c));
}

Status Vmm::set_vsock(VsockConfig c) {
  KINDLING_TRY(not_started, refuse_after_start());
  (void)not_started;
  resources_.vsock = std::move(c);
  return ok_status();
}

Status Vmm::set_logger(const LoggerConfig& c) {
  if (logger_set_) return make_error("Reinitializing the logger is not allowed.");
  std::optional<LogLevel> level = parse_log_level(c.level);
  if (!level) return make_error(fmt::format("Invalid log level `{}`.", c.level));
  if (c.log_path) {
    LogSink sink;
    sink.path = *c.log_path;
    sink.instance_id = opts_.instance_id;
    sink.show_level = c.show_level;
    sink.show_origin = c.show_log_origin;
    if (auto s = configure_logging(sink, *level); !s) return s;
  } else {
    set_log_level(*level);
  }
  resources_.logger = c;
  logger_set_ = true;
  return ok_status();
}

Status Vmm::set_metrics(const MetricsConfig& c) {
  if (metrics_fd_.valid()) return make_error("Reinitializing the metrics system is not allowed.");
  // Non-blocking so a FIFO without a reader cannot stall the VMM.
  UniqueFd fd(::open(c.metrics_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC, 0600));
  if (!fd.valid()) return make_error(fmt::format("Cannot open the metrics file: {} ({})", std::strerror(errno), c.metrics_path));
  metrics_fd_ = std::move(fd);
  resources_.metrics = c;
  return ok_status();
}

Status Vmm::apply_resources(VmResources r) {
  if (r.logger) {
    if (auto s = set_logger(*r.logger); !s) return s;
  }
  if (r.metrics) {
    if (auto s = set_metrics(*r.metrics); !s) return s;
  }
  if (r.boot_source) {
    if (auto s = set_boot_source(*r.boot_source); !s) return s;
  }
  if (auto s = set_machine_config(r.machine); !s) return s;
  if (r.cpu_config_json) {
    if (auto s = set_cpu_config(*r.cpu_config_json); !s) return s;
  }
  for (auto& d : r.drives) {
    if (auto s = set_drive(d); !s) return s;
  }
  for (auto& n : r.network_interfaces) {
    if (auto s = set_network_interface(n); !s) return s;
  }
  if (r.entropy) {
    if (auto s = set_entropy(*r.entropy); !s) return s;
  }
  if (r.vsock) {
    if (auto s = set_vsock(*r.vsock); !s) return s;
  }
  if (r.serial.serial_out_path) return set_serial(r.serial);
  return ok_status();
}

Status Vmm::instance_start() {
  KINDLING_TRY(not_started, refuse_after_start());
  (void)not_started;
  opts_.metrics->mark(opts_.metrics->instance_start_us);
  KINDLING_TRY(serial_fd, open_serial_out());
  KINDLING_TRY(vm, MicroVm::build(resources_, serial_fd, *opts_.metrics, make_hooks(), take_prepared_platform()));
  vm_ = std::move(vm);
  vm_->start();
  log_info("instance started");
  return ok_status();
}

Result<int> Vmm::open_serial_out() {
  if (!resources_.serial.serial_out_path) return opts_.default_serial_fd;
  serial_fd_.reset(::open(resources_.serial.serial_out_path->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!serial_fd_.valid()) {
    return make_error(fmt::format("Cannot open the serial output file: {} ({})", std::strerror(errno), *resources_.serial.serial_out_path));
  }
  return serial_fd_.get();
}

MicroVmHooks Vmm::make_hooks() {
  MicroVmHooks hooks;
  hooks.on_guest_exit = [this](ExitCode code, const std::string&) { on_guest_exit(code); };
  hooks.vcpu_thread_setup = opts_.vcpu_thread_setup;
  hooks.device_thread_setup = opts_.device_thread_setup;
  hooks.use_ioeventfd = opts_.use_ioeventfd;
  return hooks;
}

Status Vmm::send_ctrl_alt_del() {
  if (!started()) return make_error(kNotBeforeStart);
  vm_->send_ctrl_alt_del();
  return ok_status();
}

Status Vmm::flush_metrics() {
  if (!metrics_fd_.valid()) return make_error("The metrics system is not initialized: PUT /metrics first.");
  std::string line = opts_.metrics->to_json() + "\n";
  ssize_t n = ::write(metrics_fd_.get(), line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) return make_error(fmt::format("Cannot write metrics: {}", n < 0 ? std::strerror(errno) : "short write"));
  return ok_status();
}

Status Vmm::pause() {
  if (!started()) return make_error(kNotBeforeStart);
  KINDLING_TRY(paused, vm_->pause());
  (void)paused;
  log_info("paused");
  return ok_status();
}

Status Vmm::resume() {
  if (!started()) return make_error(kNotBeforeStart);
  KINDLING_TRY(resumed, vm_->resume());
  (void)resumed;
  log_info("resumed");
  return ok_status();
}

nlohmann::json Vmm::instance_info() const {
  const char* state = !started() ? "Not started" : vm_->paused() ? "Paused" : "Running";
  return {{"id", opts_.instance_id}, {"state", state}, {"vmm_version", kVmmVersion}, {"app_name", "kindling-vmm"}};
}

std::optional<ExitCode> Vmm::guest_exit() const {
  int v = guest_exit_.load();
  if (v < 0) return std::nullopt;
  return static_cast<ExitCode>(v);
}

void Vmm::on_guest_exit(ExitCode code) {
  int expected = -1;
  guest_exit_.compare_exchange_strong(expected, to_int(code));
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(exit_event_.get(), &one, sizeof(one));
}

void Vmm::shutdown() {
  if (vm_) vm_->stop();
  if (metrics_fd_.valid()) {
    if (auto s = flush_metrics(); !s) log_warn("final metrics flush failed: {}", s.error().message);
    metrics_fd_.reset();
  }
}

}  // namespace kindling::vmm
