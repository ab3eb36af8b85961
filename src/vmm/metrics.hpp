// VMM metrics: lock-free counters bumped on hot paths (vCPU exits, serial
// bytes) and milestone timestamps, written as one JSON object per flush —
// on `FlushMetrics` and at exit. Names follow kindling_<component>_<what>_<unit>.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace kindling::vmm {

// Monotonic microseconds; milestones are stored in this clock.
int64_t monotonic_us();
int64_t unix_time_us();

struct VmmMetrics {
  // vCPU exits by reason.
  std::atomic<uint64_t> exits_io_in{0}, exits_io_out{0}, exits_mmio_read{0}, exits_mmio_write{0};
  std::atomic<uint64_t> exits_hlt{0}, exits_shutdown{0}, exits_intr{0}, exits_internal_error{0};
  std::atomic<uint64_t> exits_fail_entry{0}, exits_system_event{0}, exits_other{0};
  // Guest accesses that hit nothing (counted, answered with all ones).
  std::atomic<uint64_t> pio_unhandled{0}, mmio_unhandled{0};
  std::atomic<uint64_t> serial_bytes_out{0}, serial_write_errors{0};
  std::atomic<uint64_t> i8042_reset_requests{0}, ctrl_alt_del_sent{0};
  std::atomic<uint64_t> api_requests{0}, api_errors{0};
  // Snapshot restore through userfaultfd: faults served, pages copied in
  // ahead from the hot list, bytes read from the memory file, time in the handler.
  std::atomic<uint64_t> uffd_faults{0}, uffd_prefetched_pages{0}, uffd_bytes_read{0}, uffd_handler_us{0}, uffd_removes{0};
  // PUT /snapshot/load: call received to vCPUs running (µs), 0 = no restore.
  std::atomic<int64_t> snapshot_load_to_running_us{0};
  std::atomic<int64_t> snapshot_create_us{0};
  // Wall-clock process start, to correlate with other logs; milestones below are relative to it.
  std::atomic<int64_t> process_start_unix_us{0};
  // Milestones (monotonic µs, 0 = not reached).
  std::atomic<int64_t> process_start_us{0}, api_ready_us{0}, instance_start_us{0}, vcpus_started_us{0},
      first_serial_byte_us{0};

  void mark(std::atomic<int64_t>& milestone) {
    int64_t zero = 0;
    milestone.compare_exchange_strong(zero, monotonic_us());
  }
  std::string to_json() const;
};

}  // namespace kindling::vmm
