// Intel MultiProcessor Specification 1.4 tables, so an SMP guest without
// ACPI finds its CPUs, its I/O APIC and how ISA interrupts are routed.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace kindling::vmm {

// The bytes of the floating pointer followed by the configuration table,
// placed at `base` (so internal pointers are right). Pure, for unit tests.
Result<std::vector<uint8_t>> build_mptable(uint64_t base, uint32_t vcpu_count);

// Builds and writes the table at the EBDA (layout::kEbdaStart).
Status write_mptable(const GuestMemory& mem, uint32_t vcpu_count);

}  // namespace kindling::vmm
