#include "vmm/snapshot/snapshot_format.hpp"

#include <cpuid.h>
#include <fmt/format.h>

#include <cstring>
#include <type_traits>

#include "vmm/snapshot/crc32.hpp"

namespace kindling::vmm {
namespace {

constexpr char kMagic[8] = {'K', 'N', 'D', 'L', 'S', 'N', 'A', 'P'};
constexpr uint32_t kHeaderSize = 40;
constexpr uint32_t kTagMachine = 1, kTagVm = 2, kTagSerial = 3, kTagVcpu = 4, kTagVirtio = 5;
constexpr uint32_t kVirtioActivated = 1, kVirtioNeedsReset = 2, kVirtioDeviceFailed = 4, kVirtioBlockRo = 8, kVirtioBlockFlush = 16;
constexpr uint32_t kTypeNet = 1, kTypeBlock = 2, kTypeEntropy = 4, kTypeVsock = 19;
constexpr uint32_t kNetHasMac = 1;
constexpr uint32_t kLimiterBandwidth = 1, kLimiterOps = 2;
// Debts beyond this are not ones a device makes (its largest request is far
// smaller); the bound keeps the restored double exact.
constexpr int64_t kMaxBucketDebt = int64_t{1} << 40;
constexpr uint32_t kVcpuHasXsave = 1, kVcpuHasXcrs = 2;
constexpr uint16_t kVirtqMaxSizeForSnapshot = 32768;
constexpr uint64_t kMaxMemBytes = 1048576ull << 20;  // the API's mem_size_mib limit

// x86-64 only, so raw little-endian struct bytes are the encoding; sizes are
// pinned so a header change cannot silently change the file format.
static_assert(sizeof(kvm_regs) == 144 && sizeof(kvm_sregs) == 312 && sizeof(kvm_fpu) == 416);
static_assert(sizeof(kvm_xcrs) == 392 && sizeof(kvm_debugregs) == 128 && sizeof(kvm_lapic_state) == 1024);
static_assert(sizeof(kvm_vcpu_events) == 64 && sizeof(kvm_mp_state) == 4 && sizeof(XsaveArea) == 4096);
static_assert(sizeof(kvm_irqchip) == 520 && sizeof(kvm_pit_state2) == 112 && sizeof(kvm_clock_data) == 48);
static_assert(sizeof(kvm_msr_entry) == 16 && sizeof(kvm_cpuid_entry2) == 40);

class Writer {
 public:
  template <typename T>
  void pod(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out_.insert(out_.end(), p, p + sizeof(T));
  }
  template <typename T>
  void array(const std::vector<T>& v) {
    pod(static_cast<uint32_t>(v.size()));
    for (const T& e : v) pod(e);
  }
  void str(const std::string& v) {
    pod(static_cast<uint32_t>(v.size()));
    out_.insert(out_.end(), v.begin(), v.end());
  }
  std::vector<uint8_t>& bytes() { return out_; }

 private:
  std::vector<uint8_t> out_;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  template <typename T>
  bool pod(T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (in_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  // The count is checked against `max` and the bytes left before anything is allocated.
  template <typename T>
  bool array(std::vector<T>& v, uint32_t max) {
    uint32_t n = 0;
    if (!pod(n) || n > max || (in_.size() - pos_) / sizeof(T) < n) return false;
    v.resize(n);
    for (T& e : v) pod(e);
    return true;
  }
  bool str(std::string& v, uint32_t max) {
    uint32_t n = 0;
    if (!pod(n) || n > max || in_.size() - pos_ < n) return false;
    v.assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == in_.size(); }
  size_t left() const { return in_.size() - pos_; }
  std::span<const uint8_t> take(size_t n) {
    auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
};

void put_record(Writer& body, uint32_t tag, Writer& payload) {
  body.pod(tag);
  body.pod(static_cast<uint32_t>(payload.bytes().size()));
  body.bytes().insert(body.bytes().end(), payload.bytes().begin(), payload.bytes().end());
}

Error corrupt(const std::string& what) { return make_error("The snapshot file is invalid: " + what + "."); }

Result<MachineState> read_machine(Reader& r) {
  MachineState m;
  uint32_t flags = 0;
  if (!r.pod(m.vcpu_count) || !r.pod(flags) || !r.pod(m.mem_bytes) || !r.pod(m.cpu.vendor) || !r.pod(m.cpu.signature) || !r.done()) {
    return corrupt("the machine record has the wrong size");
  }
  if (m.vcpu_count == 0 || m.vcpu_count > kSnapshotMaxVcpus) return corrupt(fmt::format("{} vCPUs (1..{} allowed)", m.vcpu_count, kSnapshotMaxVcpus));
  if (m.mem_bytes == 0 || m.mem_bytes % 4096 != 0 || m.mem_bytes > kMaxMemBytes) return corrupt(fmt::format("guest memory size {} bytes", m.mem_bytes));
  if (flags & ~1u) return corrupt("unknown machine flags");
  m.huge_pages = flags & 1;
  if (m.huge_pages && m.mem_bytes % (2u << 20) != 0) return corrupt("huge-page guest memory is not a multiple of 2 MiB");
  return m;
}

Result<VcpuState> read_vcpu(Reader& r, uint32_t expected_index) {
  VcpuState v;
  uint32_t index = 0, flags = 0;
  if (!r.pod(index) || !r.pod(flags)) return corrupt("a vCPU record is truncated");
  if (index != expected_index) return corrupt(fmt::format("vCPU record {} found where {} was expected", index, expected_index));
  if (flags & ~(kVcpuHasXsave | kVcpuHasXcrs)) return corrupt("unknown vCPU flags");
  v.has_xsave = flags & kVcpuHasXsave;
  v.has_xcrs = flags & kVcpuHasXcrs;
  bool ok = r.pod(v.mp_state) && r.pod(v.regs) && r.pod(v.sregs) && (v.has_xsave ? r.pod(v.xsave) : r.pod(v.fpu)) &&
            r.pod(v.xcrs) && r.pod(v.debugregs) && r.pod(v.lapic) && r.pod(v.events) &&
            r.array(v.msrs, kSnapshotMaxMsrs) && r.array(v.cpuid, kSnapshotMaxCpuidEntries) && r.done();
  if (!ok) return corrupt(fmt::format("vCPU {}'s record has the wrong size or too many MSR/CPUID entries", index));
  if (v.has_xcrs && v.xcrs.nr_xcrs > KVM_MAX_XCRS) return corrupt(fmt::format("vCPU {} has {} XCRs", index, v.xcrs.nr_xcrs));
  return v;
}

void put_virtio(Writer& p, const VirtioSavedState& d, uint32_t version) {
  p.pod(d.device_type);
  p.str(d.name);
  p.pod(uint32_t{(d.activated ? kVirtioActivated : 0u) | (d.needs_reset ? kVirtioNeedsReset : 0u) |
                 (d.device_failed ? kVirtioDeviceFailed : 0u) | (d.block_read_only ? kVirtioBlockRo : 0u) |
                 (d.block_flush ? kVirtioBlockFlush : 0u)});
  for (uint32_t v : {d.status, d.device_features_sel, d.driver_features_sel, d.queue_sel, d.interrupt_status, d.config_generation}) p.pod(v);
  p.pod(d.driver_features);
  p.pod(static_cast<uint32_t>(d.queues.size()));
  for (const auto& q : d.queues) {
    p.pod(q.max_size);
    p.pod(q.size);
    p.pod(uint16_t{q.ready});
    p.pod(q.desc_table);
    p.pod(q.avail_ring);
    p.pod(q.used_ring);
    p.pod(q.next_avail);
    p.pod(q.next_used);
    p.pod(q.signalled_used);
  }
  p.str(d.block_path);
  p.str(d.block_id);
  p.pod(d.block_size_bytes);
  if (version < 3) return;
  p.str(d.net_iface_id);
  p.str(d.net_host_dev_name);
  p.pod(uint32_t{d.net_mac ? kNetHasMac : 0u});
  p.pod(d.net_mac.value_or(std::array<uint8_t, 6>{}));
  p.pod(d.vsock_guest_cid);
  p.str(d.vsock_uds_path);
  p.pod(uint32_t{(d.limiters[0] ? 1u : 0u) | (d.limiters[1] ? 2u : 0u)});
  for (const auto& l : d.limiters) {
    if (!l) continue;
    p.pod(uint32_t{(l->bandwidth ? kLimiterBandwidth : 0u) | (l->ops ? kLimiterOps : 0u)});
    for (const auto& b : {l->bandwidth, l->ops}) {
      if (!b) continue;
      p.pod(b->size);
      p.pod(b->one_time_burst);
      p.pod(b->refill_time_ms);
      p.pod(b->tokens);
      p.pod(b->burst_left);
    }
  }
}

// A bucket as the API would have accepted it, holding no more than it can.
bool read_bucket(Reader& r, TokenBucketSavedState& b, std::string& why) {
  if (!r.pod(b.size) || !r.pod(b.one_time_burst) || !r.pod(b.refill_time_ms) || !r.pod(b.tokens) || !r.pod(b.burst_left)) {
    why = "a rate limiter is truncated";
    return false;
  }
  if (b.size == 0 || b.refill_time_ms == 0) {
    why = "a rate limiter bucket with a zero size or refill time";
    return false;
  }
  if (b.tokens > 0 && static_cast<uint64_t>(b.tokens) > b.size) {
    why = fmt::format("a rate limiter bucket holds {} tokens but its size is {}", b.tokens, b.size);
    return false;
  }
  if (b.tokens < -kMaxBucketDebt) {
    why = fmt::format("a rate limiter bucket owes {} tokens", -b.tokens);
    return false;
  }
  if (b.burst_left > b.one_time_burst) {
    why = "a rate limiter's burst left is larger than its one-time burst";
    return false;
  }
  return true;
}

bool valid_tap_name(const std::string& n) {
  if (n.empty() || n.size() > kSnapshotMaxTapNameBytes) return false;
  for (char c : n) {
    if (c == '\0' || c == '/' || c == ' ') return false;
  }
  return n != "." && n != "..";
}

bool valid_queue_size(uint16_t v) { return v != 0 && v <= kVirtqMaxSizeForSnapshot && (v & (v - 1)) == 0; }

Result<VirtioSavedState> read_virtio(Reader& r, uint32_t index, uint32_t version) {
  VirtioSavedState d;
  uint32_t flags = 0, nq = 0;
  auto bad = [index](const std::string& what) { return corrupt(fmt::format("virtio device record {}: {}", index, what)); };
  if (!r.pod(d.device_type) || !r.str(d.name, kSnapshotMaxIdBytes) || !r.pod(flags) || !r.pod(d.status) || !r.pod(d.device_features_sel) ||
      !r.pod(d.driver_features_sel) || !r.pod(d.queue_sel) || !r.pod(d.interrupt_status) || !r.pod(d.config_generation) ||
      !r.pod(d.driver_features) || !r.pod(nq)) {
    return bad("truncated");
  }
  const bool v3_type = d.device_type == kTypeNet || d.device_type == kTypeVsock;
  if (d.device_type != kTypeBlock && d.device_type != kTypeEntropy && !(version >= 3 && v3_type)) {
    return bad(fmt::format("device type {} cannot be restored", d.device_type));
  }
  if (flags & ~(kVirtioActivated | kVirtioNeedsReset | kVirtioDeviceFailed | kVirtioBlockRo | kVirtioBlockFlush)) return bad("unknown flags");
  d.activated = flags & kVirtioActivated;
  d.needs_reset = flags & kVirtioNeedsReset;
  d.device_failed = flags & kVirtioDeviceFailed;
  d.block_read_only = flags & kVirtioBlockRo;
  d.block_flush = flags & kVirtioBlockFlush;
  if (d.status > 0xff) return bad("status is wider than 8 bits");
  // The transport activates the device whenever the driver sets DRIVER_OK
  // without FAILED (or sets FAILED itself): one without the other never was.
  if ((d.status & 0x04) && !(d.status & 0x80) && !d.activated) return bad("DRIVER_OK in the status but the device is not activated");
  if (d.interrupt_status & ~3u) return bad("unknown interrupt status bits");
  if (nq == 0 || nq > kSnapshotMaxVirtioQueues) return bad(fmt::format("{} queues", nq));
  for (uint32_t i = 0; i < nq; ++i) {
    VirtqueueSavedState q;
    uint16_t ready = 0;
    if (!r.pod(q.max_size) || !r.pod(q.size) || !r.pod(ready) || !r.pod(q.desc_table) || !r.pod(q.avail_ring) ||
        !r.pod(q.used_ring) || !r.pod(q.next_avail) || !r.pod(q.next_used) || !r.pod(q.signalled_used)) {
      return bad("a queue is truncated");
    }
    if (ready > 1) return bad("queue ready is not 0 or 1");
    if (!valid_queue_size(q.max_size) || !valid_queue_size(q.size) || q.size > q.max_size) {
      return bad(fmt::format("queue {} size {} (max {})", i, q.size, q.max_size));
    }
    // The device can have popped at most a ring's worth of chains it has not
    // returned yet; more means positions that never were.
    if (static_cast<uint16_t>(q.next_avail - q.next_used) > q.size) {
      return bad(fmt::format("queue {} positions avail {} used {} are more than its size {} apart", i, q.next_avail, q.next_used, q.size));
    }
    // Rings of an active device are used as soon as it runs: aligned as the
    // spec requires, not wrapping the address space (restore then checks
    // they lie inside guest memory).
    if (d.activated && !d.device_failed && ready) {
      if (q.desc_table % 16 || q.avail_ring % 2 || q.used_ring % 4) return bad(fmt::format("queue {} rings are not aligned", i));
      if (q.desc_table > UINT64_MAX - 16ull * q.size || q.avail_ring > UINT64_MAX - (6 + 2ull * q.size) ||
          q.used_ring > UINT64_MAX - (6 + 8ull * q.size)) {
        return bad(fmt::format("queue {} rings wrap the address space", i));
      }
    }
    q.ready = static_cast<uint8_t>(ready);
    d.queues.push_back(q);
  }
  if (!r.str(d.block_path, kSnapshotMaxPathBytes) || !r.str(d.block_id, kSnapshotMaxIdBytes) || !r.pod(d.block_size_bytes)) {
    return bad("wrong size");
  }
  uint32_t limiter_mask = 0;
  if (version >= 3) {
    uint32_t net_flags = 0;
    std::array<uint8_t, 6> mac{};
    if (!r.str(d.net_iface_id, kSnapshotMaxIdBytes) || !r.str(d.net_host_dev_name, kSnapshotMaxTapNameBytes) || !r.pod(net_flags) ||
        !r.pod(mac) || !r.pod(d.vsock_guest_cid) || !r.str(d.vsock_uds_path, kSnapshotMaxUdsPathBytes) || !r.pod(limiter_mask)) {
      return bad("wrong size");
    }
    if (net_flags & ~kNetHasMac) return bad("unknown net flags");
    if (net_flags & kNetHasMac) {
      d.net_mac = mac;
    } else if (mac != std::array<uint8_t, 6>{}) {
      return bad("a MAC address without the flag that says there is one");
    }
    if (limiter_mask & ~3u) return bad("unknown rate limiter slots");
    for (uint32_t slot = 0; slot < 2; ++slot) {
      if (!(limiter_mask & (1u << slot))) continue;
      uint32_t lflags = 0;
      if (!r.pod(lflags)) return bad("a rate limiter is truncated");
      if (lflags & ~(kLimiterBandwidth | kLimiterOps)) return bad("unknown rate limiter flags");
      if (!lflags) return bad("a rate limiter with no bucket");
      RateLimiterSavedState l;
      std::string why;
      for (uint32_t bit : {kLimiterBandwidth, kLimiterOps}) {
        if (!(lflags & bit)) continue;
        TokenBucketSavedState b;
        if (!read_bucket(r, b, why)) return bad(why);
        (bit == kLimiterBandwidth ? l.bandwidth : l.ops) = b;
      }
      d.limiters[slot] = l;
    }
  }
  if (!r.done()) return bad("wrong size");

  const std::string expected_name = d.device_type == kTypeBlock   ? "block:" + d.block_id
                                    : d.device_type == kTypeNet   ? "net:" + d.net_iface_id
                                    : d.device_type == kTypeVsock ? "vsock"
                                                                  : "rng";
  const bool has_block_config = !d.block_path.empty() || !d.block_id.empty() || d.block_size_bytes || d.block_read_only || d.block_flush;
  const bool has_net_config = !d.net_iface_id.empty() || !d.net_host_dev_name.empty() || d.net_mac;
  const bool has_vsock_config = d.vsock_guest_cid != 0 || !d.vsock_uds_path.empty();
  // Version 2 named a block device by its slot only; its drive id could differ.
  if (d.device_type == kTypeBlock ? d.name.rfind("block:", 0) != 0 || (version >= 3 && d.name != expected_name) : d.name != expected_name) {
    return bad("name does not match its type");
  }
  if (d.device_type == kTypeBlock && d.block_path.empty()) return bad("a block device without a backing file path");
  if (d.device_type != kTypeBlock && has_block_config) return bad("block config on a device that is not a block device");
  if (d.device_type != kTypeNet && has_net_config) return bad("net config on a device that is not a net device");
  if (d.device_type != kTypeVsock && has_vsock_config) return bad("vsock config on a device that is not a vsock device");
  const uint32_t queues_of_type = d.device_type == kTypeNet ? 2 : d.device_type == kTypeVsock ? 3 : 1;
  if (nq != queues_of_type) return bad(fmt::format("{} queues where its type has {}", nq, queues_of_type));
  if (d.block_path.find('\0') != std::string::npos) return bad("a NUL in the block path");
  if (d.device_type == kTypeNet) {
    if (d.net_iface_id.empty()) return bad("a net device without an iface_id");
    if (!valid_tap_name(d.net_host_dev_name)) return bad("a net device without a valid tap name");
  }
  if (d.device_type == kTypeVsock) {
    if (d.vsock_guest_cid < 3) return bad(fmt::format("vsock guest CID {} (3 or more)", d.vsock_guest_cid));
    if (d.vsock_uds_path.empty() || d.vsock_uds_path.find('\0') != std::string::npos) return bad("a vsock device without a valid uds_path");
  }
  // Who may have which limiter: rng and block one, net RX and TX, vsock none.
  const uint32_t allowed_limiters = d.device_type == kTypeNet ? 3u : d.device_type == kTypeVsock ? 0u : 1u;
  if (limiter_mask & ~allowed_limiters) return bad("a rate limiter on a device or direction that has none");
  return d;
}

}  // namespace

CpuIdentity host_cpu_identity() {
  CpuIdentity c;
  unsigned a = 0, b = 0, cx = 0, d = 0;
  __cpuid(0, a, b, cx, d);
  std::memcpy(c.vendor.data(), &b, 4);
  std::memcpy(c.vendor.data() + 4, &d, 4);
  std::memcpy(c.vendor.data() + 8, &cx, 4);
  __cpuid(1, a, b, cx, d);
  c.signature = a;
  return c;
}

std::string describe(const CpuIdentity& c) {
  std::string vendor;
  for (char ch : c.vendor) vendor += (ch >= 0x20 && ch < 0x7f) ? ch : '?';
  return fmt::format("{} signature {:#x}", vendor, c.signature);
}

std::vector<uint8_t> encode_snapshot(const SnapshotState& s, uint32_t version) {
  Writer body;
  uint32_t records = 0;
  {
    Writer p;
    p.pod(s.machine.vcpu_count);
    p.pod(uint32_t{s.machine.huge_pages ? 1u : 0u});
    p.pod(s.machine.mem_bytes);
    p.pod(s.machine.cpu.vendor);
    p.pod(s.machine.cpu.signature);
    put_record(body, kTagMachine, p);
    ++records;
  }
  {
    Writer p;
    p.pod(s.vm.pic_master);
    p.pod(s.vm.pic_slave);
    p.pod(s.vm.ioapic);
    p.pod(s.vm.pit);
    p.pod(s.vm.clock);
    put_record(body, kTagVm, p);
    ++records;
  }
  {
    Writer p;
    const SerialState& u = s.serial;
    for (uint8_t b : {u.ier, u.lcr, u.mcr, u.scr, u.dll, u.dlh, u.thr_interrupt_pending}) p.pod(b);
    put_record(body, kTagSerial, p);
    ++records;
  }
  for (uint32_t i = 0; i < s.vcpus.size(); ++i) {
    const VcpuState& v = s.vcpus[i];
    Writer p;
    p.pod(i);
    p.pod(uint32_t{(v.has_xsave ? kVcpuHasXsave : 0u) | (v.has_xcrs ? kVcpuHasXcrs : 0u)});
    p.pod(v.mp_state);
    p.pod(v.regs);
    p.pod(v.sregs);
    if (v.has_xsave) {
      p.pod(v.xsave);
    } else {
      p.pod(v.fpu);
    }
    p.pod(v.xcrs);
    p.pod(v.debugregs);
    p.pod(v.lapic);
    p.pod(v.events);
    p.array(v.msrs);
    p.array(v.cpuid);
    put_record(body, kTagVcpu, p);
    ++records;
  }
  for (const VirtioSavedState& d : s.virtio) {
    Writer p;
    put_virtio(p, d, version);
    put_record(body, kTagVirtio, p);
    ++records;
  }
  Writer file;
  for (char c : kMagic) file.pod(c);
  file.pod(version);
  file.pod(kHeaderSize);
  file.pod(static_cast<uint64_t>(body.bytes().size()));
  file.pod(crc32(body.bytes()));
  file.pod(uint32_t{0});  // reserved
  file.pod(records);
  file.pod(crc32(std::span(file.bytes().data(), file.bytes().size())));
  file.bytes().insert(file.bytes().end(), body.bytes().begin(), body.bytes().end());
  return std::move(file.bytes());
}

Result<SnapshotState> decode_snapshot(std::span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderSize) return corrupt(fmt::format("{} bytes is shorter than the {}-byte header (truncated?)", bytes.size(), kHeaderSize));
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) return corrupt("it is not a kindling-vmm snapshot (bad magic)");
  Reader h(bytes.subspan(sizeof(kMagic), kHeaderSize - sizeof(kMagic)));
  uint32_t version = 0, header_size = 0, body_crc = 0, reserved = 0, records = 0, header_crc = 0;
  uint64_t body_len = 0;
  h.pod(version);
  h.pod(header_size);
  h.pod(body_len);
  h.pod(body_crc);
  h.pod(reserved);
  h.pod(records);
  h.pod(header_crc);
  // The version first: a newer format may lay out the rest differently.
  if (version == 0 || version > kSnapshotFormatVersion) {
    return make_error(fmt::format("The snapshot file has format version {}; this kindling-vmm reads versions 1 to {} only.", version, kSnapshotFormatVersion));
  }
  if (crc32(bytes.subspan(0, kHeaderSize - 4)) != header_crc) return corrupt("the header checksum does not match");
  if (header_size != kHeaderSize || reserved != 0) return corrupt("unexpected header size or reserved field");
  if (body_len > kSnapshotMaxBodyBytes) return corrupt(fmt::format("a {}-byte body is larger than any snapshot we write", body_len));
  if (bytes.size() - kHeaderSize != body_len) {
    return corrupt(fmt::format("the body is {} bytes but the header says {} (truncated or extended)", bytes.size() - kHeaderSize, body_len));
  }
  std::span<const uint8_t> body = bytes.subspan(kHeaderSize);
  if (crc32(body) != body_crc) return corrupt("the body checksum does not match (corrupted)");
  const uint32_t max_devices = version == 1 ? 0 : kSnapshotMaxVirtioDevices;
  if (records < 3 || records > 3 + kSnapshotMaxVcpus + max_devices) return corrupt(fmt::format("{} records", records));

  SnapshotState s;
  bool have_machine = false, have_vm = false, have_serial = false;
  Reader r(body);
  for (uint32_t i = 0; i < records; ++i) {
    uint32_t tag = 0, len = 0;
    if (!r.pod(tag) || !r.pod(len) || len > r.left()) return corrupt(fmt::format("record {} runs past the end", i));
    Reader rec(r.take(len));
    // One order only (machine, VM, serial, vCPUs by index): the machine
    // record says how many vCPU records follow, and one order means one
    // encoding per state.
    // Virtio device records (version 2) follow the vCPUs, in slot order.
    const uint32_t expected = i == 0   ? kTagMachine
                              : i == 1 ? kTagVm
                              : i == 2 ? kTagSerial
                              : i < 3 + s.machine.vcpu_count ? kTagVcpu
                                                             : kTagVirtio;
    if (tag != expected) return corrupt(fmt::format("record {} has type {} where {} belongs", i, tag, expected));
    switch (tag) {
      case kTagMachine: {
        if (have_machine) return corrupt("a second machine record");
        KINDLING_TRY(m, read_machine(rec));
        s.machine = m;
        have_machine = true;
        if (records < 3 + m.vcpu_count || records > 3 + m.vcpu_count + max_devices) {
          return corrupt(fmt::format("{} records for {} vCPUs", records, m.vcpu_count));
        }
        break;
      }
      case kTagVm:
        if (have_vm) return corrupt("a second VM record");
        if (!rec.pod(s.vm.pic_master) || !rec.pod(s.vm.pic_slave) || !rec.pod(s.vm.ioapic) || !rec.pod(s.vm.pit) ||
            !rec.pod(s.vm.clock) || !rec.done()) {
          return corrupt("the VM record has the wrong size");
        }
        if (s.vm.pic_master.chip_id != KVM_IRQCHIP_PIC_MASTER || s.vm.pic_slave.chip_id != KVM_IRQCHIP_PIC_SLAVE ||
            s.vm.ioapic.chip_id != KVM_IRQCHIP_IOAPIC) {
          return corrupt("the irqchip records are not PIC master, PIC slave and IOAPIC");
        }
        have_vm = true;
        break;
      case kTagSerial: {
        if (have_serial) return corrupt("a second serial record");
        SerialState& u = s.serial;
        if (!rec.pod(u.ier) || !rec.pod(u.lcr) || !rec.pod(u.mcr) || !rec.pod(u.scr) || !rec.pod(u.dll) || !rec.pod(u.dlh) ||
            !rec.pod(u.thr_interrupt_pending) || !rec.done()) {
          return corrupt("the serial record has the wrong size");
        }
        have_serial = true;
        break;
      }
      case kTagVcpu: {
        if (s.vcpus.size() >= s.machine.vcpu_count) return corrupt("more vCPU records than vCPUs");
        KINDLING_TRY(v, read_vcpu(rec, static_cast<uint32_t>(s.vcpus.size())));
        s.vcpus.push_back(std::move(v));
        break;
      }
      case kTagVirtio: {
        KINDLING_TRY(d, read_virtio(rec, static_cast<uint32_t>(s.virtio.size()), version));
        for (const auto& other : s.virtio) {
          if (other.name == d.name) return corrupt(fmt::format("two virtio devices named {}", d.name));
        }
        s.virtio.push_back(std::move(d));
        break;
      }
      default:
        return corrupt(fmt::format("unknown record type {}", tag));
    }
  }
  if (!r.done()) return corrupt("bytes after the last record");
  if (!have_vm || !have_serial || s.vcpus.size() != s.machine.vcpu_count) return corrupt("a required record is missing");
  return s;
}

}  // namespace kindling::vmm
