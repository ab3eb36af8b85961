#include "vmm/metrics.hpp"

#include <time.h>

#include <nlohmann/json.hpp>

namespace kindling::vmm {

int64_t monotonic_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

int64_t unix_time_us() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

std::string VmmMetrics::to_json() const {
  auto since_start = [this](const std::atomic<int64_t>& m) -> nlohmann::json {
    int64_t v = m.load();
    if (v == 0) return nullptr;
    return v - process_start_us.load();
  };
  nlohmann::json j = {
      {"kindling_vmm_exits_io_in_total", exits_io_in.load()},
      {"kindling_vmm_exits_io_out_total", exits_io_out.load()},
      {"kindling_vmm_exits_mmio_read_total", exits_mmio_read.load()},
      {"kindling_vmm_exits_mmio_write_total", exits_mmio_write.load()},
      {"kindling_vmm_exits_hlt_total", exits_hlt.load()},
      {"kindling_vmm_exits_shutdown_total", exits_shutdown.load()},
      {"kindling_vmm_exits_intr_total", exits_intr.load()},
      {"kindling_vmm_exits_internal_error_total", exits_internal_error.load()},
      {"kindling_vmm_exits_fail_entry_total", exits_fail_entry.load()},
      {"kindling_vmm_exits_system_event_total", exits_system_event.load()},
      {"kindling_vmm_exits_other_total", exits_other.load()},
      {"kindling_vmm_pio_unhandled_total", pio_unhandled.load()},
      {"kindling_vmm_mmio_unhandled_total", mmio_unhandled.load()},
      {"kindling_vmm_serial_bytes_out_total", serial_bytes_out.load()},
      {"kindling_vmm_serial_write_errors_total", serial_write_errors.load()},
      {"kindling_vmm_i8042_reset_requests_total", i8042_reset_requests.load()},
      {"kindling_vmm_ctrl_alt_del_sent_total", ctrl_alt_del_sent.load()},
      {"kindling_vmm_api_requests_total", api_requests.load()},
      {"kindling_vmm_api_errors_total", api_errors.load()},
      {"kindling_vmm_uffd_faults_total", uffd_faults.load()},
      {"kindling_vmm_uffd_prefetched_pages_total", uffd_prefetched_pages.load()},
      {"kindling_vmm_uffd_bytes_read_total", uffd_bytes_read.load()},
      {"kindling_vmm_uffd_handler_us_total", uffd_handler_us.load()},
      {"kindling_vmm_uffd_remove_events_total", uffd_removes.load()},
      {"kindling_vmm_snapshot_load_to_running_us", snapshot_load_to_running_us.load() ? nlohmann::json(snapshot_load_to_running_us.load()) : nlohmann::json()},
      {"kindling_vmm_snapshot_create_us", snapshot_create_us.load() ? nlohmann::json(snapshot_create_us.load()) : nlohmann::json()},
      {"kindling_vmm_process_start_unix_us", process_start_unix_us.load()},
      // Milestones as microseconds since the process started.
      {"kindling_vmm_api_ready_us", since_start(api_ready_us)},
      {"kindling_vmm_instance_start_us", since_start(instance_start_us)},
      {"kindling_vmm_vcpus_started_us", since_start(vcpus_started_us)},
      {"kindling_vmm_first_serial_byte_us", since_start(first_serial_byte_us)},
      {"kindling_vmm_uptime_us", monotonic_us() - process_start_us.load()},
  };
  return j.dump();
}

}  // namespace kindling::vmm
