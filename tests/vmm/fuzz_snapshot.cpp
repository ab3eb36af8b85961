// libFuzzer target: the snapshot file decoder. Half the inputs get their
// checksums fixed up first, so the fuzzer reaches the record parsers behind
// them instead of stopping at the CRC every time. A decoded state must keep
// the bounds the decoder promises.
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <vector>

#include "vmm/snapshot/crc32.hpp"
#include "vmm/snapshot/snapshot_format.hpp"

namespace {

// A valid one-vCPU file of the current version with no devices yet.
std::vector<uint8_t> base_file() {
  using namespace kindling::vmm;
  SnapshotState s;
  s.machine.vcpu_count = 1;
  s.machine.mem_bytes = 1 << 20;
  s.vm.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
  s.vm.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
  s.vm.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
  s.vcpus.resize(1);
  return encode_snapshot(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kindling::vmm;
  std::vector<uint8_t> bytes(data, data + size);
  if (size >= 1 && (data[0] & 3) == 2) {
    // The device records: a valid file with the input, split into up to
    // three virtio records, appended; the record count and CRCs fixed up
    // (seeds in fuzz_corpus/snapshot: rng, block, net and vsock records,
    // with and without rate limiters).
    // Reaching read_virtio through a random whole file would need ~6 KiB of
    // valid vCPU record first.
    static const std::vector<uint8_t> base = base_file();
    bytes = base;
    uint32_t records = 0;
    std::memcpy(&records, bytes.data() + 32, 4);
    // Input after the mode byte: up to three {u16 length, payload} pieces.
    size_t pos = 1;
    for (int r = 0; r < 3 && size - pos >= 2; ++r) {
      uint16_t want = 0;
      std::memcpy(&want, data + pos, 2);
      pos += 2;
      const size_t len = std::min<size_t>(want, size - pos);
      uint32_t tag = 5, len32 = static_cast<uint32_t>(len);
      bytes.insert(bytes.end(), reinterpret_cast<uint8_t*>(&tag), reinterpret_cast<uint8_t*>(&tag) + 4);
      bytes.insert(bytes.end(), reinterpret_cast<uint8_t*>(&len32), reinterpret_cast<uint8_t*>(&len32) + 4);
      bytes.insert(bytes.end(), data + pos, data + pos + len);
      ++records;
      pos += len;
    }
    uint64_t body_len = bytes.size() - 40;
    std::memcpy(bytes.data() + 16, &body_len, 8);
    std::memcpy(bytes.data() + 32, &records, 4);
    uint32_t body = crc32(std::span(bytes).subspan(40));
    std::memcpy(bytes.data() + 24, &body, 4);
    uint32_t header = crc32(std::span(bytes).subspan(0, 36));
    std::memcpy(bytes.data() + 36, &header, 4);
  } else if (size >= 40 && (data[0] & 1)) {
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
    if (s->virtio.size() > kSnapshotMaxVirtioDevices) __builtin_trap();
    for (const auto& d : s->virtio) {
      if (d.device_type != 1 && d.device_type != 2 && d.device_type != 4 && d.device_type != 19) __builtin_trap();
      const size_t queues = d.device_type == 1 ? 2 : d.device_type == 19 ? 3 : 1;
      if (d.queues.size() != queues) __builtin_trap();
      if (d.device_type != 1 && (d.limiters[1] || !d.net_host_dev_name.empty())) __builtin_trap();
      if (d.device_type == 1 && (d.net_host_dev_name.empty() || d.net_host_dev_name.size() > kSnapshotMaxTapNameBytes)) __builtin_trap();
      if (d.device_type == 19 && (d.vsock_guest_cid < 3 || d.vsock_uds_path.empty() || d.limiters[0])) __builtin_trap();
      for (const auto& l : d.limiters) {
        if (!l) continue;
        if (!l->bandwidth && !l->ops) __builtin_trap();
        for (const auto& b : {l->bandwidth, l->ops}) {
          if (b && (b->size == 0 || b->refill_time_ms == 0 || b->burst_left > b->one_time_burst ||
                    (b->tokens > 0 && static_cast<uint64_t>(b->tokens) > b->size))) {
            __builtin_trap();
          }
        }
      }
      if (d.queues.empty() || d.queues.size() > kSnapshotMaxVirtioQueues) __builtin_trap();
      for (const auto& q : d.queues) {
        if (q.size == 0 || q.size > q.max_size || (q.size & (q.size - 1))) __builtin_trap();
        if (static_cast<uint16_t>(q.next_avail - q.next_used) > q.size) __builtin_trap();
      }
      if (d.block_path.size() > kSnapshotMaxPathBytes) __builtin_trap();
    }
    // Re-encoding a decoded state gives back the bytes it came from (in the
    // version it came in: older files decode too).
    uint32_t version = 0;
    std::memcpy(&version, bytes.data() + 8, 4);
    if (encode_snapshot(*s, version) != bytes) __builtin_trap();
  }
  return 0;
}
