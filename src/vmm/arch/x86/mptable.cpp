#include "vmm/arch/x86/mptable.hpp"

#include <cstring>

#include "vmm/arch/x86/layout.hpp"

namespace kindling::vmm {
namespace {

constexpr uint8_t kApicVersion = 0x14;
constexpr uint8_t kIoapicVersion = 0x11;
constexpr uint32_t kIsaIrqs = 16;

void put(std::vector<uint8_t>& out, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  out.insert(out.end(), b, b + n);
}
template <typename T>
void put_le(std::vector<uint8_t>& out, T v) {
  put(out, &v, sizeof(T));  // x86 is little endian, as the spec's fields
}
uint8_t checksum_fix(const uint8_t* p, size_t n) {
  uint8_t s = 0;
  for (size_t i = 0; i < n; ++i) s = static_cast<uint8_t>(s + p[i]);
  return static_cast<uint8_t>(-s);
}

}  // namespace

Result<std::vector<uint8_t>> build_mptable(uint64_t base, uint32_t vcpu_count) {
  if (vcpu_count == 0 || vcpu_count > layout::kMaxVcpus) return make_error("mptable: vCPU count out of range");
  const uint8_t ioapic_id = static_cast<uint8_t>(vcpu_count);  // after the LAPIC ids
  std::vector<uint8_t> out;

  // Floating pointer (16 bytes), pointing right behind itself.
  put(out, "_MP_", 4);
  put_le<uint32_t>(out, static_cast<uint32_t>(base + 16));
  put_le<uint8_t>(out, 1);  // length in 16-byte units
  put_le<uint8_t>(out, 4);  // spec revision 1.4
  put_le<uint8_t>(out, 0);  // checksum, fixed below
  for (int i = 0; i < 5; ++i) put_le<uint8_t>(out, 0);  // no default configuration; IMCR absent

  const size_t table = out.size();
  put(out, "PCMP", 4);
  put_le<uint16_t>(out, 0);  // base table length, fixed below
  put_le<uint8_t>(out, 4);
  put_le<uint8_t>(out, 0);  // checksum
  put(out, "KINDLING", 8);
  put(out, "KINDLING-VMM", 12);
  put_le<uint32_t>(out, 0);  // no OEM table
  put_le<uint16_t>(out, 0);
  put_le<uint16_t>(out, 0);  // entry count, fixed below
  put_le<uint32_t>(out, static_cast<uint32_t>(layout::kLapicAddr));
  put_le<uint16_t>(out, 0);  // extended table
  put_le<uint8_t>(out, 0);
  put_le<uint8_t>(out, 0);
  uint16_t entries = 0;

  for (uint32_t cpu = 0; cpu < vcpu_count; ++cpu, ++entries) {
    put_le<uint8_t>(out, 0);  // processor
    put_le<uint8_t>(out, static_cast<uint8_t>(cpu));
    put_le<uint8_t>(out, kApicVersion);
    put_le<uint8_t>(out, static_cast<uint8_t>(1 | (cpu == 0 ? 2 : 0)));  // enabled, BSP
    put_le<uint32_t>(out, 0x600);  // family 6 signature
    put_le<uint32_t>(out, 0x201);  // FPU, APIC
    put_le<uint64_t>(out, 0);
  }
  put_le<uint8_t>(out, 1);  // bus 0: ISA
  put_le<uint8_t>(out, 0);
  put(out, "ISA   ", 6);
  ++entries;
  put_le<uint8_t>(out, 2);  // I/O APIC
  put_le<uint8_t>(out, ioapic_id);
  put_le<uint8_t>(out, kIoapicVersion);
  put_le<uint8_t>(out, 1);  // usable
  put_le<uint32_t>(out, static_cast<uint32_t>(layout::kIoapicAddr));
  ++entries;
  for (uint32_t irq = 0; irq < kIsaIrqs; ++irq, ++entries) {
    put_le<uint8_t>(out, 3);  // I/O interrupt assignment
    put_le<uint8_t>(out, 0);  // INT
    put_le<uint16_t>(out, 0);  // conforming polarity and trigger
    put_le<uint8_t>(out, 0);  // source bus
    put_le<uint8_t>(out, static_cast<uint8_t>(irq));
    put_le<uint8_t>(out, ioapic_id);
    put_le<uint8_t>(out, static_cast<uint8_t>(irq));
  }
  for (uint8_t lint = 0; lint < 2; ++lint, ++entries) {
    put_le<uint8_t>(out, 4);  // local interrupt assignment
    put_le<uint8_t>(out, lint == 0 ? 3 : 1);  // ExtINT, NMI
    put_le<uint16_t>(out, 0);
    put_le<uint8_t>(out, 0);
    put_le<uint8_t>(out, 0);
    put_le<uint8_t>(out, 0xff);  // all local APICs
    put_le<uint8_t>(out, lint);
  }

  const uint16_t table_len = static_cast<uint16_t>(out.size() - table);
  std::memcpy(&out[table + 4], &table_len, 2);
  std::memcpy(&out[table + 34], &entries, 2);
  out[table + 7] = checksum_fix(&out[table], table_len);
  out[10] = checksum_fix(out.data(), 16);
  return out;
}

Status write_mptable(const GuestMemory& mem, uint32_t vcpu_count) {
  KINDLING_TRY(bytes, build_mptable(layout::kEbdaStart, vcpu_count));
  if (layout::kEbdaStart + bytes.size() > layout::kLowRamEnd) return make_error("mptable does not fit in the EBDA");
  return mem.write(layout::kEbdaStart, bytes);
}

}  // namespace kindling::vmm
