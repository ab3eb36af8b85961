// The saved state of a microVM (everything but guest RAM, which goes to its
// own memory file) and its on-disk encoding. Pure data and bytes: no KVM
// calls here, so the decoder can be fuzzed and unit-tested without a VM.
// Layout: docs/vmm-snapshot.md. The decoder treats the file as hostile:
// every length is bounded before it is used, every record must be exactly
// the size its type has, and the checksums are checked before any field is.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace kindling::vmm {

// 2 added the virtio device records; 3 added net and vsock devices and rate
// limiters to them. Version 1 (no devices) and 2 files still load.
inline constexpr uint32_t kSnapshotFormatVersion = 3;
inline constexpr uint32_t kSnapshotMaxVirtioDevices = 19;  // kMaxVirtioDevices
inline constexpr uint32_t kSnapshotMaxVirtioQueues = 8;
inline constexpr uint32_t kSnapshotMaxPathBytes = 4096;
inline constexpr uint32_t kSnapshotMaxIdBytes = 64;        // drive and iface ids
inline constexpr uint32_t kSnapshotMaxTapNameBytes = 15;   // IFNAMSIZ - 1
inline constexpr uint32_t kSnapshotMaxUdsPathBytes = 100;  // as PUT /vsock allows
inline constexpr uint32_t kSnapshotMaxVcpus = 32;
inline constexpr uint32_t kSnapshotMaxMsrs = 1024;
inline constexpr uint32_t kSnapshotMaxCpuidEntries = 512;
// A 32-vCPU state is ~200 KiB; anything much larger is not ours.
inline constexpr uint64_t kSnapshotMaxBodyBytes = 16ull << 20;

// The legacy 4 KiB XSAVE area of KVM_GET_XSAVE (kvm_xsave's fixed part; see
// kvm_abi.hpp for why we do not use the uapi struct itself from C++).
struct XsaveArea {
  uint32_t region[1024];
};

// Where the snapshot was taken: restoring on a CPU of another vendor or
// family/model/stepping is refused (CPU templates cannot hide features on
// nested hosts, docs/vmm-nested-kvm.md, so the signature is the check).
struct CpuIdentity {
  std::array<char, 12> vendor{};
  uint32_t signature = 0;  // CPUID.1:EAX
  bool operator==(const CpuIdentity&) const = default;
};
CpuIdentity host_cpu_identity();
std::string describe(const CpuIdentity& c);

struct VcpuState {
  std::vector<kvm_cpuid_entry2> cpuid;
  kvm_mp_state mp_state{};
  kvm_regs regs{};
  kvm_sregs sregs{};
  bool has_xsave = false;
  XsaveArea xsave{};  // when has_xsave
  kvm_fpu fpu{};      // otherwise
  bool has_xcrs = false;
  kvm_xcrs xcrs{};
  kvm_debugregs debugregs{};
  kvm_lapic_state lapic{};
  std::vector<kvm_msr_entry> msrs;
  kvm_vcpu_events events{};
};

struct VmState {
  kvm_irqchip pic_master{};
  kvm_irqchip pic_slave{};
  kvm_irqchip ioapic{};
  kvm_pit_state2 pit{};
  kvm_clock_data clock{};
};

struct SerialState {
  uint8_t ier = 0, lcr = 0x03, mcr = 0x08, scr = 0, dll = 0x0c, dlh = 0;
  uint8_t thr_interrupt_pending = 0;
};

// One split virtqueue: what the driver programmed through the transport and
// the device's own ring positions.
struct VirtqueueSavedState {
  uint16_t max_size = 0;
  uint16_t size = 0;
  uint8_t ready = 0;
  uint64_t desc_table = 0, avail_ring = 0, used_ring = 0;
  uint16_t next_avail = 0;      // host's last avail idx
  uint16_t next_used = 0;       // next used idx to publish
  uint16_t signalled_used = 0;  // event-idx interrupt suppression point
  bool operator==(const VirtqueueSavedState&) const = default;
};

// One token bucket of a rate limiter: its config and what it holds. The
// moment of the last refill is not saved (a monotonic clock of another
// process): a restored bucket refills from the moment it is restored.
struct TokenBucketSavedState {
  uint64_t size = 0;
  uint64_t one_time_burst = 0;
  uint64_t refill_time_ms = 0;
  int64_t tokens = 0;       // may be negative: the debt of an oversized request
  uint64_t burst_left = 0;  // what is left of one_time_burst
  bool operator==(const TokenBucketSavedState&) const = default;
};
struct RateLimiterSavedState {
  std::optional<TokenBucketSavedState> bandwidth;
  std::optional<TokenBucketSavedState> ops;
  bool operator==(const RateLimiterSavedState&) const = default;
};

// One virtio-mmio device: transport registers, queues and the device's
// config (enough to recreate it on load). Types: net (1), block (2), rng
// (4), vsock (19); the decoder refuses any other.
struct VirtioSavedState {
  uint32_t device_type = 0;  // VirtioDeviceType
  std::string name;          // the slot name, e.g. "rng", "block:rootfs"
  // Transport.
  uint32_t status = 0;
  uint32_t device_features_sel = 0, driver_features_sel = 0, queue_sel = 0;
  uint32_t interrupt_status = 0, config_generation = 0;
  uint64_t driver_features = 0;
  bool activated = false, needs_reset = false, device_failed = false;
  std::vector<VirtqueueSavedState> queues;
  // Block config (device_type 2 only).
  std::string block_path;
  std::string block_id;
  uint64_t block_size_bytes = 0;
  bool block_read_only = false;
  bool block_flush = false;
  // Net config (device_type 1 only). Frames in flight are not saved.
  std::string net_iface_id;
  std::string net_host_dev_name;  // the tap
  std::optional<std::array<uint8_t, 6>> net_mac;
  // Vsock config (device_type 19 only). Connections are not saved.
  uint32_t vsock_guest_cid = 0;
  std::string vsock_uds_path;
  // Rate limiters: [0] the device's (rng, block) or net RX, [1] net TX.
  std::array<std::optional<RateLimiterSavedState>, 2> limiters;
  bool operator==(const VirtioSavedState&) const = default;
};

struct MachineState {
  uint32_t vcpu_count = 0;
  uint64_t mem_bytes = 0;
  bool huge_pages = false;
  CpuIdentity cpu;
};

struct SnapshotState {
  MachineState machine;
  VmState vm;
  SerialState serial;
  std::vector<VcpuState> vcpus;
  std::vector<VirtioSavedState> virtio;  // in slot order (MMIO window / IRQ order)
};

// `version` 2 is for tests of older files only: it drops what version 2
// cannot carry (net, vsock, limiters).
std::vector<uint8_t> encode_snapshot(const SnapshotState& s, uint32_t version = kSnapshotFormatVersion);
// Refuses anything that is not exactly a well-formed file of our version.
Result<SnapshotState> decode_snapshot(std::span<const uint8_t> bytes);

}  // namespace kindling::vmm
