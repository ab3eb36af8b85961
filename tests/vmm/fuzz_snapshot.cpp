// libFuzzer target: the snapshot file decoder. Half the inputs get their
// checksums fixed up first, so the fuzzer reaches the record parsers behind
// them instead of stopping at the CRC every time. A decoded state must keep
// the bounds the decoder promises.
#include <cstdint>
#include <cstring>
#include <vector>

#include "vmm/snapshot/crc32.hpp"
#include "vmm/snapshot/snapshot_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kindling::vmm;
  std::vector<uint8_t> bytes(data, data + size);
  if (size >= 40 && (data[0] & 1)) {
    // Keep the magic so the fix-up is worth it, then make both CRCs right.
    std::memcpy(bytes.data(), "KNDLSNAP", 8);
    uint32_t body = crc32(std::span(bytes).subspan(40));
    std::memcpy(bytes.data() + 24, &body, 4);
    uint32_t header = crc32(std::span(bytes).subspan(0, 36));
    std::memcpy(bytes.data() + 36, &header, 4);
  }
  auto s = decode_snapshot(bytes);
  if (s) {
    if (s->machine.vcpu_count == 0 || s->machine.vcpu_count > kSnapshotMaxVcpus) __builtin_trap();
    if (s->vcpus.size() != s->machine.vcpu_count) __builtin_trap();
    for (const auto& v : s->vcpus) {
      if (v.msrs.size() > kSnapshotMaxMsrs || v.cpuid.size() > kSnapshotMaxCpuidEntries) __builtin_trap();
    }
    // Re-encoding a decoded state gives back the bytes it came from.
    if (encode_snapshot(*s) != bytes) __builtin_trap();
  }
  return 0;
}
