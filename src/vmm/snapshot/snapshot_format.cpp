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
constexpr uint32_t kTagMachine = 1, kTagVm = 2, kTagSerial = 3, kTagVcpu = 4;
constexpr uint32_t kVcpuHasXsave = 1, kVcpuHasXcrs = 2;
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

std::vector<uint8_t> encode_snapshot(const SnapshotState& s) {
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
  Writer file;
  for (char c : kMagic) file.pod(c);
  file.pod(kSnapshotFormatVersion);
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
  if (version != kSnapshotFormatVersion) {
    return make_error(fmt::format("The snapshot file has format version {}; this kindling-vmm reads version {} only.", version, kSnapshotFormatVersion));
  }
  if (crc32(bytes.subspan(0, kHeaderSize - 4)) != header_crc) return corrupt("the header checksum does not match");
  if (header_size != kHeaderSize || reserved != 0) return corrupt("unexpected header size or reserved field");
  if (body_len > kSnapshotMaxBodyBytes) return corrupt(fmt::format("a {}-byte body is larger than any snapshot we write", body_len));
  if (bytes.size() - kHeaderSize != body_len) {
    return corrupt(fmt::format("the body is {} bytes but the header says {} (truncated or extended)", bytes.size() - kHeaderSize, body_len));
  }
  std::span<const uint8_t> body = bytes.subspan(kHeaderSize);
  if (crc32(body) != body_crc) return corrupt("the body checksum does not match (corrupted)");
  if (records < 3 || records > 3 + kSnapshotMaxVcpus) return corrupt(fmt::format("{} records", records));

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
    const uint32_t expected = i == 0 ? kTagMachine : i == 1 ? kTagVm : i == 2 ? kTagSerial : kTagVcpu;
    if (tag != expected) return corrupt(fmt::format("record {} has type {} where {} belongs", i, tag, expected));
    switch (tag) {
      case kTagMachine: {
        if (have_machine) return corrupt("a second machine record");
        KINDLING_TRY(m, read_machine(rec));
        s.machine = m;
        have_machine = true;
        if (records != 3 + m.vcpu_count) return corrupt(fmt::format("{} records for {} vCPUs", records, m.vcpu_count));
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
      default:
        return corrupt(fmt::format("unknown record type {}", tag));
    }
  }
  if (!r.done()) return corrupt("bytes after the last record");
  if (!have_vm || !have_serial || s.vcpus.size() != s.machine.vcpu_count) return corrupt("a required record is missing");
  return s;
}

}  // namespace kindling::vmm
