// The snapshot file decoder on its own: round trip, and refusal of every
// truncation, every flipped byte, other versions, and bounds broken behind a
// valid checksum. No KVM needed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "vmm/memory/uffd_handler.hpp"
#include "vmm/snapshot/crc32.hpp"
#include "vmm/snapshot/snapshot_format.hpp"

namespace kindling::vmm {
namespace {

SnapshotState sample(uint32_t vcpus = 2) {
  SnapshotState s;
  s.machine.vcpu_count = vcpus;
  s.machine.mem_bytes = 64ull << 20;
  s.machine.cpu = host_cpu_identity();
  s.vm.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
  s.vm.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
  s.vm.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
  s.vm.clock.clock = 123456789;
  s.serial.ier = 2;
  for (uint32_t i = 0; i < vcpus; ++i) {
    VcpuState v;
    v.regs.rip = 0x100000 + i;
    v.regs.rax = 42;
    v.sregs.cr0 = 0x80000011;
    v.has_xsave = i == 0;
    v.xsave.region[5] = 7;
    v.fpu.fcw = 0x37f;
    v.has_xcrs = true;
    v.xcrs.nr_xcrs = 1;
    v.lapic.regs[0x20] = static_cast<char>(i);
    v.msrs = {{0x10, 0, 999}, {0xc0000080, 0, 0x500}};
    kvm_cpuid_entry2 e{};
    e.function = 1;
    e.eax = 0x806f8;
    v.cpuid = {e};
    s.vcpus.push_back(v);
  }
  return s;
}

VirtioSavedState sample_block() {
  VirtioSavedState d;
  d.device_type = 2;
  d.name = "block:rootfs";
  d.status = 0x0f;
  d.device_features_sel = 1;
  d.driver_features_sel = 1;
  d.interrupt_status = 1;
  d.config_generation = 3;
  d.driver_features = (1ull << 32) | (1ull << 29);
  d.activated = true;
  d.queues.push_back({256, 16, 1, 0x10000, 0x11000, 0x12000, 7, 7, 6});
  d.block_path = "/tmp/disk.img";
  d.block_id = "rootfs";
  d.block_size_bytes = 1 << 20;
  d.block_read_only = true;
  return d;
}

VirtioSavedState sample_rng() {
  VirtioSavedState d;
  d.device_type = 4;
  d.name = "rng";
  d.status = 0x0f;
  d.driver_features = 1ull << 32;
  d.activated = true;
  d.queues.push_back({256, 16, 1, 0x20000, 0x21000, 0x22000, 65535, 65535, 0});
  return d;
}

VirtioSavedState sample_net() {
  VirtioSavedState d;
  d.device_type = 1;
  d.name = "net:eth0";
  d.status = 0x0f;
  d.driver_features = (1ull << 32) | (1ull << 29) | (1ull << 5);
  d.activated = true;
  d.queues.push_back({256, 8, 1, 0x30000, 0x30080, 0x31000, 12, 4, 4});  // RX: 8 buffers out
  d.queues.push_back({256, 16, 1, 0x32000, 0x32100, 0x33000, 9, 9, 9});
  d.net_iface_id = "eth0";
  d.net_host_dev_name = "ktap0";
  d.net_mac = std::array<uint8_t, 6>{0x06, 0, 0x0a, 0, 0, 0x02};
  RateLimiterSavedState rx;
  rx.bandwidth = TokenBucketSavedState{4096, 1000, 100, -300, 12};
  RateLimiterSavedState tx;
  tx.ops = TokenBucketSavedState{10, 0, 1000, 3, 0};
  tx.bandwidth = TokenBucketSavedState{1 << 20, 0, 10, 1 << 20, 0};
  d.limiters = {rx, tx};
  return d;
}

VirtioSavedState sample_vsock() {
  VirtioSavedState d;
  d.device_type = 19;
  d.name = "vsock";
  d.status = 0x0f;
  d.driver_features = 1ull << 32;
  d.activated = true;
  d.queues.push_back({256, 8, 1, 0x40000, 0x40080, 0x41000, 100, 100, 99});
  d.queues.push_back({256, 16, 1, 0x42000, 0x42100, 0x43000, 5, 5, 5});
  d.queues.push_back({256, 4, 1, 0x44000, 0x44040, 0x45000, 2, 0, 0});
  d.vsock_guest_cid = 7;
  d.vsock_uds_path = "/run/v.sock";
  return d;
}

// Every device type, with rate limiters on rng and net.
SnapshotState sample_with_all_devices(uint32_t vcpus = 1) {
  SnapshotState s = sample(vcpus);
  VirtioSavedState rng = sample_rng();
  RateLimiterSavedState l;
  l.bandwidth = TokenBucketSavedState{64, 0, 400, 0, 0};
  rng.limiters[0] = l;
  s.virtio = {sample_block(), sample_net(), sample_vsock(), rng};
  return s;
}

SnapshotState sample_with_devices(uint32_t vcpus = 1) {
  SnapshotState s = sample(vcpus);
  s.virtio = {sample_block(), sample_rng()};
  return s;
}

// Offset of the last record's payload (the rng device's in sample_with_devices).
size_t last_record_payload(const std::vector<uint8_t>& b) {
  size_t pos = 40, last = 0;
  while (pos + 8 <= b.size()) {
    uint32_t len = 0;
    std::memcpy(&len, b.data() + pos + 4, 4);
    last = pos + 8;
    pos += 8 + len;
  }
  return last;
}

void fix_crcs(std::vector<uint8_t>& b) {
  uint32_t body = crc32(std::span(b).subspan(40));
  std::memcpy(b.data() + 24, &body, 4);
  uint32_t header = crc32(std::span(b).subspan(0, 36));
  std::memcpy(b.data() + 36, &header, 4);
}

TEST(Crc32, MatchesTheStandardCheckValue) {
  const char* s = "123456789";
  EXPECT_EQ(crc32(std::span(reinterpret_cast<const uint8_t*>(s), 9)), 0xcbf43926u);
}

TEST(SnapshotFormat, RoundTripsEveryField) {
  const SnapshotState s = sample();
  auto bytes = encode_snapshot(s);
  auto d = decode_snapshot(bytes);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->machine.vcpu_count, 2u);
  EXPECT_EQ(d->machine.mem_bytes, 64ull << 20);
  EXPECT_TRUE(d->machine.cpu == host_cpu_identity());
  EXPECT_EQ(d->vm.clock.clock, 123456789u);
  EXPECT_EQ(d->serial.ier, 2);
  ASSERT_EQ(d->vcpus.size(), 2u);
  EXPECT_EQ(d->vcpus[1].regs.rip, 0x100001u);
  EXPECT_TRUE(d->vcpus[0].has_xsave);
  EXPECT_EQ(d->vcpus[0].xsave.region[5], 7u);
  EXPECT_FALSE(d->vcpus[1].has_xsave);
  EXPECT_EQ(d->vcpus[1].fpu.fcw, 0x37f);
  EXPECT_EQ(d->vcpus[1].lapic.regs[0x20], 1);
  ASSERT_EQ(d->vcpus[0].msrs.size(), 2u);
  EXPECT_EQ(d->vcpus[0].msrs[1].data, 0x500u);
  ASSERT_EQ(d->vcpus[0].cpuid.size(), 1u);
  EXPECT_EQ(d->vcpus[0].cpuid[0].eax, 0x806f8u);
  // Encoding is deterministic: the same state, the same bytes.
  EXPECT_EQ(encode_snapshot(*d), bytes);
}

TEST(SnapshotFormat, RoundTripsVirtioDevices) {
  const SnapshotState s = sample_with_devices(2);
  auto bytes = encode_snapshot(s);
  auto d = decode_snapshot(bytes);
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_EQ(d->virtio.size(), 2u);
  EXPECT_EQ(d->virtio[0], s.virtio[0]);
  EXPECT_EQ(d->virtio[1], s.virtio[1]);
  EXPECT_EQ(d->virtio[0].queues[0].next_avail, 7);
  EXPECT_EQ(d->virtio[0].queues[0].signalled_used, 6);
  EXPECT_TRUE(d->virtio[0].block_read_only);
  EXPECT_EQ(d->virtio[0].block_path, "/tmp/disk.img");
  EXPECT_EQ(d->virtio[1].queues[0].next_used, 65535);
  EXPECT_EQ(encode_snapshot(*d), bytes);
}

TEST(SnapshotFormat, RoundTripsNetVsockAndRateLimiters) {
  const SnapshotState s = sample_with_all_devices(1);
  auto bytes = encode_snapshot(s);
  auto d = decode_snapshot(bytes);
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_EQ(d->virtio.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(d->virtio[i], s.virtio[i]) << i;
  EXPECT_EQ(d->virtio[1].net_host_dev_name, "ktap0");
  ASSERT_TRUE(d->virtio[1].limiters[0] && d->virtio[1].limiters[0]->bandwidth);
  EXPECT_EQ(d->virtio[1].limiters[0]->bandwidth->tokens, -300);
  EXPECT_EQ(d->virtio[2].vsock_guest_cid, 7u);
  EXPECT_EQ(encode_snapshot(*d), bytes);
}

TEST(SnapshotFormat, Version2FilesStillLoadWithRngAndBlockOnly) {
  const SnapshotState s = sample_with_devices(1);
  auto v2 = encode_snapshot(s, 2);
  EXPECT_EQ(v2[8], 2);
  auto d = decode_snapshot(v2);
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_EQ(d->virtio.size(), 2u);
  EXPECT_EQ(d->virtio[0], s.virtio[0]);
  EXPECT_EQ(d->virtio[1], s.virtio[1]);
  // Net and vsock records are version 3's: a version 2 file cannot hold them.
  SnapshotState net = sample(1);
  net.virtio = {sample_net()};
  net.virtio[0].limiters = {};
  auto d2 = decode_snapshot(encode_snapshot(net, 2));
  ASSERT_FALSE(d2.ok());
  EXPECT_NE(d2.error().message.find("cannot be restored"), std::string::npos) << d2.error().message;
}

TEST(SnapshotFormat, EveryTruncationOfANetAndVsockSnapshotIsRefused) {
  auto bytes = encode_snapshot(sample_with_all_devices(1));
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decode_snapshot(std::span(bytes).subspan(0, n)).ok()) << n;
  }
}

TEST(SnapshotFormat, EveryFlippedByteOfTheNetAndVsockRecordsIsRefused) {
  auto bytes = encode_snapshot(sample_with_all_devices(1));
  const size_t start = bytes.size() - 900;
  for (size_t i = start; i < bytes.size(); i += 3) {
    auto copy = bytes;
    copy[i] ^= 0x04;
    EXPECT_FALSE(decode_snapshot(copy).ok()) << "byte " << i;
  }
}

TEST(SnapshotFormat, NetVsockAndLimiterBoundsAreCheckedBehindAValidChecksum) {
  auto refused = [](const SnapshotState& s, const char* needle) {
    auto d = decode_snapshot(encode_snapshot(s));
    if (d.ok()) return ::testing::AssertionFailure() << "accepted";
    if (d.error().message.find(needle) == std::string::npos) return ::testing::AssertionFailure() << d.error().message;
    return ::testing::AssertionSuccess();
  };
  constexpr size_t kNet = 1, kVsock = 2, kRng = 3;
  SnapshotState s = sample_with_all_devices();
  s.virtio[kNet].net_host_dev_name = "";
  EXPECT_TRUE(refused(s, "tap name"));
  s = sample_with_all_devices();
  s.virtio[kNet].net_host_dev_name = "../../etc";
  EXPECT_TRUE(refused(s, "tap name"));
  s = sample_with_all_devices();
  s.virtio[kNet].net_host_dev_name = std::string(16, 'x');
  EXPECT_TRUE(refused(s, "wrong size"));
  s = sample_with_all_devices();
  s.virtio[kNet].net_iface_id = "eth1";  // the name says eth0
  EXPECT_TRUE(refused(s, "name does not match"));
  s = sample_with_all_devices();
  s.virtio[kNet].queues.pop_back();
  EXPECT_TRUE(refused(s, "1 queues where its type has 2"));
  s = sample_with_all_devices();
  s.virtio[kNet].queues[0].next_avail = 13;  // 9 chains out on a ring of 8
  EXPECT_TRUE(refused(s, "more than its size"));
  s = sample_with_all_devices();
  s.virtio[kNet].queues[1].used_ring = 0x33002;
  EXPECT_TRUE(refused(s, "not aligned"));
  s = sample_with_all_devices();
  s.virtio[kNet].queues[1].desc_table = UINT64_MAX - 15;
  EXPECT_TRUE(refused(s, "wrap"));
  s = sample_with_all_devices();
  s.virtio[kRng].net_mac = std::array<uint8_t, 6>{1, 2, 3, 4, 5, 6};
  EXPECT_TRUE(refused(s, "net config on a device"));
  s = sample_with_all_devices();
  s.virtio[kVsock].vsock_guest_cid = 2;
  EXPECT_TRUE(refused(s, "guest CID 2"));
  s = sample_with_all_devices();
  s.virtio[kVsock].vsock_uds_path = "";
  EXPECT_TRUE(refused(s, "uds_path"));
  s = sample_with_all_devices();
  s.virtio[kVsock].vsock_uds_path = std::string(101, 'a');
  EXPECT_TRUE(refused(s, "wrong size"));
  s = sample_with_all_devices();
  s.virtio[kNet].vsock_guest_cid = 9;
  EXPECT_TRUE(refused(s, "vsock config on a device"));
  s = sample_with_all_devices();
  s.virtio[kVsock].limiters[0] = s.virtio[kRng].limiters[0];
  EXPECT_TRUE(refused(s, "has none"));
  s = sample_with_all_devices();
  s.virtio[kRng].limiters[1] = s.virtio[kRng].limiters[0];  // TX is net's only
  EXPECT_TRUE(refused(s, "has none"));
  s = sample_with_all_devices();
  s.virtio[kRng].limiters[0]->bandwidth->tokens = 65;  // size 64
  EXPECT_TRUE(refused(s, "holds 65 tokens"));
  s = sample_with_all_devices();
  s.virtio[kRng].limiters[0]->bandwidth->tokens = -(int64_t{1} << 41);
  EXPECT_TRUE(refused(s, "owes"));
  s = sample_with_all_devices();
  s.virtio[kRng].limiters[0]->bandwidth->size = 0;
  EXPECT_TRUE(refused(s, "zero size"));
  s = sample_with_all_devices();
  s.virtio[kRng].limiters[0]->bandwidth->refill_time_ms = 0;
  EXPECT_TRUE(refused(s, "zero size or refill time"));
  s = sample_with_all_devices();
  s.virtio[kNet].limiters[0]->bandwidth->burst_left = 1001;  // one_time_burst 1000
  EXPECT_TRUE(refused(s, "burst"));
  s = sample_with_all_devices();
  s.virtio[kRng].limiters[0] = RateLimiterSavedState{};
  EXPECT_TRUE(refused(s, "no bucket"));
  s = sample_with_all_devices();
  s.virtio.push_back(sample_vsock());
  EXPECT_TRUE(refused(s, "two virtio devices named vsock"));
  s = sample_with_all_devices();
  s.virtio[kVsock].activated = false;  // status 0x0f says DRIVER_OK
  EXPECT_TRUE(refused(s, "not activated"));
}

TEST(SnapshotFormat, Version1FilesStillLoadButMayNotCarryDevices) {
  auto bytes = encode_snapshot(sample(1));
  uint32_t v1 = 1;
  std::memcpy(bytes.data() + 8, &v1, 4);
  fix_crcs(bytes);
  auto d = decode_snapshot(bytes);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(d->virtio.empty());

  auto with_devices = encode_snapshot(sample_with_devices(1));
  std::memcpy(with_devices.data() + 8, &v1, 4);
  fix_crcs(with_devices);
  EXPECT_FALSE(decode_snapshot(with_devices).ok());
}

TEST(SnapshotFormat, EveryTruncationOfADeviceSnapshotIsRefused) {
  auto bytes = encode_snapshot(sample_with_devices(1));
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decode_snapshot(std::span(bytes).subspan(0, n)).ok()) << n;
  }
}

TEST(SnapshotFormat, EveryFlippedByteOfTheDeviceRecordsIsRefused) {
  auto bytes = encode_snapshot(sample_with_devices(1));
  // Every byte of the file after the vCPU record: the device records.
  const size_t start = bytes.size() - 400;
  for (size_t i = start; i < bytes.size(); ++i) {
    auto copy = bytes;
    copy[i] ^= 0x01;
    EXPECT_FALSE(decode_snapshot(copy).ok()) << "byte " << i;
  }
}

TEST(SnapshotFormat, DeviceRecordBoundsAreCheckedBehindAValidChecksum) {
  auto refused = [](const SnapshotState& s, const char* needle) {
    auto d = decode_snapshot(encode_snapshot(s));
    if (d.ok()) return ::testing::AssertionFailure() << "accepted";
    if (d.error().message.find(needle) == std::string::npos) return ::testing::AssertionFailure() << d.error().message;
    return ::testing::AssertionSuccess();
  };
  SnapshotState s = sample_with_devices(1);
  s.virtio[1].device_type = 3;  // a console: not restorable
  EXPECT_TRUE(refused(s, "cannot be restored"));
  s = sample_with_devices(1);
  s.virtio[0].queues[0].size = 24;  // not a power of two
  EXPECT_TRUE(refused(s, "size"));
  s = sample_with_devices(1);
  s.virtio[0].queues[0].size = 512;  // beyond the maximum
  EXPECT_TRUE(refused(s, "size"));
  s = sample_with_devices(1);
  s.virtio[1].queues.push_back(s.virtio[1].queues[0]);
  EXPECT_TRUE(refused(s, "queues"));
  s = sample_with_devices(1);
  s.virtio[1].queues.clear();
  EXPECT_TRUE(refused(s, "queues"));
  s = sample_with_devices(1);
  s.virtio[1].block_path = "/etc/passwd";  // block config on an rng
  EXPECT_TRUE(refused(s, "block config"));
  s = sample_with_devices(1);
  s.virtio[0].block_path.clear();
  EXPECT_TRUE(refused(s, "backing file"));
  s = sample_with_devices(1);
  s.virtio[0].block_path = std::string("/tmp/a\0b", 8);
  EXPECT_TRUE(refused(s, "NUL"));
  s = sample_with_devices(1);
  s.virtio[0].name = "rng";
  EXPECT_TRUE(refused(s, "name"));
  s = sample_with_devices(1);
  s.virtio[0].status = 0x100;
  EXPECT_TRUE(refused(s, "status"));
  s = sample_with_devices(1);
  s.virtio[0].interrupt_status = 4;
  EXPECT_TRUE(refused(s, "interrupt"));
  s = sample_with_devices(1);
  s.virtio.push_back(s.virtio[1]);
  EXPECT_TRUE(refused(s, "two virtio devices"));
  s = sample_with_devices(1);
  s.virtio.clear();
  for (int i = 0; i < 20; ++i) {
    VirtioSavedState d = sample_block();
    d.name = "block:d" + std::to_string(i);
    s.virtio.push_back(d);
  }
  EXPECT_TRUE(refused(s, "records"));
  s = sample_with_devices(1);
  s.virtio[0].block_path = std::string(5000, 'a');
  EXPECT_TRUE(refused(s, "wrong size"));
  // A queue count far beyond the record, behind a valid checksum: refused
  // before anything is allocated. The rng record's queue count sits after
  // type, name (4 + 3), flags and six u32 registers and the u64 features.
  {
    auto bytes = encode_snapshot(sample_with_devices(1));
    const size_t nq = last_record_payload(bytes) + 4 + 7 + 4 + 24 + 8;
    uint32_t v = 0;
    std::memcpy(&v, bytes.data() + nq, 4);
    ASSERT_EQ(v, 1u);
    v = 0xffffffff;
    std::memcpy(bytes.data() + nq, &v, 4);
    fix_crcs(bytes);
    auto d = decode_snapshot(bytes);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("queues"), std::string::npos) << d.error().message;
  }
}

TEST(SnapshotFormat, EveryTruncationIsRefused) {
  auto bytes = encode_snapshot(sample(1));
  for (size_t n = 0; n < bytes.size(); n += (n < 64 ? 1 : 97)) {
    auto d = decode_snapshot(std::span(bytes).subspan(0, n));
    EXPECT_FALSE(d.ok()) << n;
  }
}

TEST(SnapshotFormat, EveryFlippedByteIsRefused) {
  auto bytes = encode_snapshot(sample(1));
  for (size_t i = 0; i < bytes.size(); i += (i < 64 ? 1 : 13)) {
    auto copy = bytes;
    copy[i] ^= 0x01;
    EXPECT_FALSE(decode_snapshot(copy).ok()) << "byte " << i;
  }
}

TEST(SnapshotFormat, AnotherVersionIsRefusedByName) {
  auto bytes = encode_snapshot(sample(1));
  bytes[8] = 4;
  fix_crcs(bytes);
  auto d = decode_snapshot(bytes);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("format version 4"), std::string::npos) << d.error().message;
}

TEST(SnapshotFormat, BoundsAreCheckedBehindAValidChecksum) {
  // vCPU count (first field of the machine record) out of range.
  for (uint32_t count : {0u, 33u, 0xffffffffu}) {
    auto bytes = encode_snapshot(sample(1));
    std::memcpy(bytes.data() + 48, &count, 4);
    fix_crcs(bytes);
    auto d = decode_snapshot(bytes);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("vCPU"), std::string::npos) << d.error().message;
  }
  // A memory size that is not whole pages.
  {
    auto bytes = encode_snapshot(sample(1));
    uint64_t mem = 12345;
    std::memcpy(bytes.data() + 56, &mem, 8);
    fix_crcs(bytes);
    EXPECT_FALSE(decode_snapshot(bytes).ok());
  }
  // An MSR count far beyond the record: refused before any allocation.
  {
    SnapshotState s = sample(1);
    s.vcpus[0].msrs.clear();
    s.vcpus[0].cpuid.clear();
    auto bytes = encode_snapshot(s);
    // The vCPU record ends in nmsrs (4 bytes, 0) then ncpuid (4 bytes, 0).
    uint32_t huge = 0x10000000;
    std::memcpy(bytes.data() + bytes.size() - 8, &huge, 4);
    fix_crcs(bytes);
    auto d = decode_snapshot(bytes);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("MSR"), std::string::npos) << d.error().message;
  }
  // A body length claiming more than we ever write.
  {
    auto bytes = encode_snapshot(sample(1));
    uint64_t len = 1ull << 40;
    std::memcpy(bytes.data() + 16, &len, 8);
    fix_crcs(bytes);
    EXPECT_FALSE(decode_snapshot(bytes).ok());
  }
}

TEST(HotPages, ParsesAndBoundsTheList) {
  char path[] = "/tmp/kindling-hot-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  ASSERT_TRUE(write_hot_pages(path, {3, 1, 4}).ok());
  auto p = read_hot_pages(path, 16);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(*p, (std::vector<uint64_t>{3, 1, 4}));
  EXPECT_FALSE(read_hot_pages(path, 4).ok()) << "page 4 of 4 is outside guest memory";
  for (const char* bad : {"1\n2", "1\nx\n", "-1\n", "99999999999999999999999\n"}) {
    FILE* f = std::fopen(path, "w");
    std::fputs(bad, f);
    std::fclose(f);
    EXPECT_FALSE(read_hot_pages(path, 16).ok()) << bad;
  }
  ::unlink(path);
}

}  // namespace
}  // namespace kindling::vmm
