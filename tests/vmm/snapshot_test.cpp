// Snapshots of a real kindling-vmm process with the `counter` guest: run,
// pause, snapshot, kill, restore in a fresh process under each memory
// backend, and check the guest counts on from where it stopped with its
// memory intact; concurrent restores; refusal of damaged files; a memory
// file that disappears under the userfaultfd handler.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "snapshot_vm.hpp"

namespace kindling::vmm::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

struct Count {
  uint64_t round = 0;
  uint64_t bad = 0;
  std::string salt;
};

// Every "KT COUNT" line of a serial log, in order.
std::vector<Count> counts(const std::string& serial) {
  static const std::regex line(R"(KT COUNT (\d+) salt (0x[0-9a-f]+) bad (\d+))");
  std::vector<Count> out;
  for (auto it = std::sregex_iterator(serial.begin(), serial.end(), line); it != std::sregex_iterator(); ++it) {
    out.push_back({std::stoull((*it)[1]), std::stoull((*it)[3]), (*it)[2]});
  }
  return out;
}

// The counter guest's VM: SnapshotVm plus its count lines.
struct Vm : SnapshotVm {
  using SnapshotVm::SnapshotVm;
  std::vector<Count> counts() const { return test::counts(serial()); }
  // Waits until the guest has printed a count beyond `after`.
  bool counted_past(uint64_t after, std::chrono::milliseconds timeout) {
    return eventually([&] { auto c = counts(); return !c.empty() && c.back().round > after; }, timeout);
  }
  json metrics() {
    if (put("/actions", {{"action_type", "FlushMetrics"}}).status != 204) return {};
    std::string text = read_file(metrics_path);
    auto last = text.rfind('\n', text.size() - 2);
    return json::parse(text.substr(last == std::string::npos ? 0 : last + 1), nullptr, false);
  }
};

class SnapshotTest : public ::testing::Test {
 protected:
  // Boots `counter`, lets it count, pauses, snapshots and kills it; returns
  // the last round printed before the pause.
  uint64_t take_snapshot(uint32_t mem_mib = 32, bool huge_pages = false, bool read_only = false) {
    Vm vm(dir_, "source");
    EXPECT_TRUE(vm.api.connected());
    EXPECT_EQ(vm.put("/boot-source", {{"kernel_image_path", guest_path("counter")}}).status, 204);
    EXPECT_EQ(vm.put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", mem_mib}, {"huge_pages", huge_pages ? "2M" : "None"}}).status, 204);
    HttpReply r = vm.put("/snapshot/create", {{"snapshot_path", snap_}, {"mem_file_path", mem_}});
    EXPECT_EQ(r.status, 400) << "a snapshot before InstanceStart must be refused";
    EXPECT_EQ(vm.put("/actions", {{"action_type", "InstanceStart"}}).status, 204);
    EXPECT_TRUE(vm.counted_past(1, 30s)) << vm.serial() << vm.proc.stderr_text();
    if (read_only) {
      EXPECT_EQ(vm.put("/actions", {{"action_type", "SendCtrlAltDel"}}).status, 204);
      EXPECT_TRUE(eventually([&] { return vm.serial().find("KT INFO read-only") != std::string::npos; }, 30s));
      EXPECT_TRUE(vm.counted_past(vm.counts().back().round + 1, 30s));
    }
    r = vm.put("/snapshot/create", {{"snapshot_type", "Full"}, {"snapshot_path", snap_}, {"mem_file_path", mem_}});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault_of(r).find("must be paused"), std::string::npos) << fault_of(r);
    EXPECT_EQ(vm.patch("/vm", {{"state", "Paused"}}).status, 204);
    const uint64_t last = vm.counts().back().round;
    r = vm.put("/snapshot/create", {{"snapshot_type", "Full"}, {"snapshot_path", snap_}, {"mem_file_path", mem_}});
    EXPECT_EQ(r.status, 204) << r.body;
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(vm.counts().back().round, last) << "a paused guest went on counting";
    EXPECT_TRUE(vm.counts().back().bad == 0) << vm.serial();
    vm.proc.signal(SIGKILL);
    vm.proc.wait(5s);
    return last;
  }

  // The restored guest's first rounds: it must go on from `last` (no second
  // boot), and find every page as it left it.
  void expect_continues(Vm& vm, uint64_t last) {
    ASSERT_TRUE(vm.counted_past(last + 1, 60s)) << vm.serial() << vm.proc.stderr_text();
    auto c = vm.counts();
    EXPECT_EQ(c.front().round, last + 1) << vm.serial();
    for (const Count& k : c) EXPECT_EQ(k.bad, 0u) << "round " << k.round << "\n" << vm.serial();
    EXPECT_EQ(vm.serial().find("KT BEGIN"), std::string::npos) << "the guest booted again instead of continuing";
  }

  TempDir dir_;
  std::string snap_ = dir_.file("vm.snap"), mem_ = dir_.file("vm.mem");
};

TEST_F(SnapshotTest, FileBackendRestoreContinuesCountingWithMemoryIntact) {
  const uint64_t last = take_snapshot();
  Vm vm(dir_, "restored");
  HttpReply r = vm.load(snap_, mem_, "File", true);
  ASSERT_EQ(r.status, 204) << r.body << vm.proc.stderr_text();
  expect_continues(vm, last);
  json m = vm.metrics();
  EXPECT_GT(m.value("kindling_vmm_snapshot_load_to_running_us", 0), 0) << m.dump();
  EXPECT_EQ(m.value("kindling_vmm_uffd_faults_total", 1), 0u);
  EXPECT_EQ(json::parse(vm.api.request("GET", "/").body)["state"], "Running");
}

TEST_F(SnapshotTest, UffdBackendRestoreContinuesCountingWithMemoryIntact) {
  const uint64_t last = take_snapshot();
  Vm vm(dir_, "restored");
  HttpReply r = vm.load(snap_, mem_, "Uffd", true);
  ASSERT_EQ(r.status, 204) << r.body << vm.proc.stderr_text();
  expect_continues(vm, last);
  json m = vm.metrics();
  // The guest reads every page above 4 MiB in a round: 28 MiB = 7168 pages at least.
  EXPECT_GE(m.value("kindling_vmm_uffd_faults_total", 0u), 7168u) << m.dump();
  EXPECT_EQ(m.value("kindling_vmm_uffd_bytes_read_total", 0u), m.value("kindling_vmm_uffd_faults_total", 0u) * 4096) << m.dump();
  EXPECT_GT(m.value("kindling_vmm_uffd_handler_us_total", 0u), 0u);
}

TEST_F(SnapshotTest, LoadWithoutResumeStaysPausedUntilResumed) {
  const uint64_t last = take_snapshot();
  Vm vm(dir_, "restored");
  ASSERT_EQ(vm.load(snap_, mem_, "File", false).status, 204);
  EXPECT_EQ(json::parse(vm.api.request("GET", "/").body)["state"], "Paused");
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(vm.counts().empty()) << vm.serial();
  ASSERT_EQ(vm.patch("/vm", {{"state", "Resumed"}}).status, 204);
  expect_continues(vm, last);
  // Loading twice, or configuring after a load, is refused.
  EXPECT_EQ(vm.load(snap_, mem_, "File", true).status, 400);
  EXPECT_EQ(vm.put("/actions", {{"action_type", "InstanceStart"}}).status, 400);
  // A restored VM can be snapshotted again, but not over the memory file its
  // memory is mapped from; a new file gets a snapshot that restores.
  ASSERT_EQ(vm.patch("/vm", {{"state", "Paused"}}).status, 204);
  const uint64_t last2 = vm.counts().back().round;
  HttpReply r = vm.put("/snapshot/create", {{"snapshot_path", dir_.file("second.snap")}, {"mem_file_path", mem_}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(fault_of(r).find("restored from"), std::string::npos) << fault_of(r);
  r = vm.put("/snapshot/create", {{"snapshot_path", dir_.file("second.snap")}, {"mem_file_path", dir_.file("second.mem")}});
  ASSERT_EQ(r.status, 204) << r.body;
  Vm again(dir_, "again");
  ASSERT_EQ(again.load(dir_.file("second.snap"), dir_.file("second.mem"), "Uffd", true).status, 204);
  expect_continues(again, last2);
}

TEST_F(SnapshotTest, TwoConcurrentRestoresOfOneSnapshotDivergeIndependently) {
  const uint64_t last = take_snapshot();
  Vm a(dir_, "a");
  Vm b(dir_, "b");
  ASSERT_EQ(a.load(snap_, mem_, "File", true).status, 204) << a.proc.stderr_text();
  ASSERT_EQ(b.load(snap_, mem_, "Uffd", true).status, 204) << b.proc.stderr_text();
  expect_continues(a, last);
  expect_continues(b, last);
  ASSERT_TRUE(a.counted_past(last + 2, 60s) && b.counted_past(last + 2, 60s));
  // Each wrote its own salts over the same pages of the same file and found
  // only its own words: no page written by one reached the other.
  auto ca = a.counts(), cb = b.counts();
  EXPECT_NE(ca[1].salt, cb[1].salt);
  for (auto& k : ca) EXPECT_EQ(k.bad, 0u);
  for (auto& k : cb) EXPECT_EQ(k.bad, 0u);
  // And the memory file itself is untouched by either (MAP_PRIVATE / copies).
  const std::string before = read_file(mem_);
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(before == read_file(mem_));
}

struct Memory {
  uint64_t rss_kib = 0, pss_kib = 0;
};
// Guest RAM only (the mapping of exactly the guest's size that holds most of
// its pages), so the VMM's own and, in sanitizer builds, ASan's mappings do
// not blur the comparison.
Memory guest_memory_of(pid_t pid, uint64_t guest_kib) {
  std::string text = read_file("/proc/" + std::to_string(pid) + "/smaps");
  auto value = [&](size_t from, const std::string& key) {
    auto at = text.find("\n" + key, from);
    return at == std::string::npos ? 0ull : std::stoull(text.substr(at + key.size() + 1));
  };
  Memory best;
  for (size_t at = text.find("\nSize:"); at != std::string::npos; at = text.find("\nSize:", at + 1)) {
    if (value(at, "Size:") != guest_kib) continue;
    Memory m{value(at, "Rss:"), value(at, "Pss:")};
    if (m.rss_kib > best.rss_kib) best = m;
  }
  return best;
}

// Ten (here four, for test time) VMs restored from one memory file: with the
// File backend the pages they only read stay the page cache's, shared by all,
// so each VM's PSS is a fraction of its RSS. The in-process Uffd backend
// copies every page into the VM's own anonymous memory: no sharing.
TEST_F(SnapshotTest, RestoresFromOneFileShareCleanPagesButUffdCopiesDoNot) {
  const uint64_t last = take_snapshot(32, false, true);
  for (const char* backend : {"File", "Uffd"}) {
    SCOPED_TRACE(backend);
    std::vector<std::unique_ptr<Vm>> vms;
    for (int i = 0; i < 4; ++i) {
      vms.push_back(std::make_unique<Vm>(dir_, std::string(backend) + std::to_string(i)));
      ASSERT_EQ(vms.back()->load(snap_, mem_, backend, true).status, 204) << vms.back()->proc.stderr_text();
    }
    Memory sum;
    for (auto& vm : vms) {
      // One whole round after the restore: every guest page has been read.
      ASSERT_TRUE(vm->counted_past(last + 1, 60s)) << vm->serial();
      for (auto& k : vm->counts()) EXPECT_EQ(k.bad, 0u);
      ASSERT_EQ(vm->patch("/vm", {{"state", "Paused"}}).status, 204);
    }
    for (auto& vm : vms) {
      Memory m = guest_memory_of(vm->proc.pid(), 32 * 1024);
      sum.rss_kib += m.rss_kib;
      sum.pss_kib += m.pss_kib;
    }
    std::printf("%s: 4 restored VMs, guest RAM (32 MiB each): RSS %llu KiB, PSS %llu KiB in all\n", backend,
                static_cast<unsigned long long>(sum.rss_kib), static_cast<unsigned long long>(sum.pss_kib));
    ASSERT_GT(sum.rss_kib, 4u * 27 * 1024) << "the guests did not touch their memory";
    if (std::string(backend) == "File") {
      EXPECT_LT(sum.pss_kib, sum.rss_kib * 4 / 10);  // ~1/4: four VMs share each page
    } else {
      EXPECT_GT(sum.pss_kib, sum.rss_kib * 95 / 100);
    }
  }
}

// 2 MiB pages for the test's VMs: the free ones, or (as root) a temporary
// reservation given back at the end. Hosts ship with none reserved.
class HugePages {
 public:
  explicit HugePages(uint64_t need) {
    const uint64_t free = meminfo("HugePages_Free:");
    if (free >= need) {
      ok_ = true;
      return;
    }
    original_ = std::stoull("0" + read_file("/proc/sys/vm/nr_hugepages"));
    if (!set(original_ + need - free)) return;
    ok_ = meminfo("HugePages_Free:") >= need;
    changed_ = true;
  }
  ~HugePages() {
    if (changed_) set(original_);
  }
  bool ok() const { return ok_; }

 private:
  static uint64_t meminfo(const std::string& key) {
    std::string text = read_file("/proc/meminfo");
    auto at = text.find(key);
    return at == std::string::npos ? 0 : std::stoull(text.substr(at + key.size()));
  }
  static bool set(uint64_t n) {
    FILE* f = std::fopen("/proc/sys/vm/nr_hugepages", "w");
    if (!f) return false;
    bool ok = std::fprintf(f, "%llu\n", static_cast<unsigned long long>(n)) > 0;
    return std::fclose(f) == 0 && ok;
  }
  uint64_t original_ = 0;
  bool ok_ = false, changed_ = false;
};

TEST_F(SnapshotTest, HugePageGuestRestoresThroughUffdIn2MiBFaults) {
  HugePages reserve(2 * 16 + 2);  // source and restored VM, 32 MiB each
  if (!reserve.ok()) GTEST_SKIP() << "cannot reserve 2 MiB huge pages on this host";
  const uint64_t last = take_snapshot(32, true);
  Vm vm(dir_, "restored");
  HttpReply r = vm.load(snap_, mem_, "Uffd", true);
  ASSERT_EQ(r.status, 204) << r.body << vm.proc.stderr_text();
  expect_continues(vm, last);
  json m = vm.metrics();
  // 32 MiB is 16 huge pages: at most 16 faults, where 4 KiB pages took thousands.
  EXPECT_GE(m.value("kindling_vmm_uffd_faults_total", 0u), 14u) << m.dump();
  EXPECT_LE(m.value("kindling_vmm_uffd_faults_total", 0u), 16u) << m.dump();
  EXPECT_EQ(m.value("kindling_vmm_uffd_bytes_read_total", 0u), m.value("kindling_vmm_uffd_faults_total", 0u) << 21) << m.dump();
}

TEST_F(SnapshotTest, DamagedSnapshotOrMemoryFileIsRefusedWithAClearError) {
  take_snapshot();
  const std::string good = read_file(snap_);
  ASSERT_GT(good.size(), 200u);
  struct Case {
    const char* name;
    std::string snapshot;
    std::string expect;
  };
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x40;
  std::string version = good;
  version[8] = 7;
  fix_header_crc(version);
  std::string cpu = good;
  // Machine record: tag, len, vcpu_count, flags, mem_bytes, vendor[12]: the vendor's first byte.
  cpu[40 + 8 + 16] ^= 0x20;
  fix_body_crc(cpu);
  std::vector<Case> cases = {
      {"truncated", good.substr(0, good.size() - 100), "truncated"},
      {"header only", good.substr(0, 30), "shorter than"},
      {"flipped byte", flipped, "checksum"},
      {"other version", version, "format version 7"},
      {"other CPU", cpu, "another CPU"},
      {"not a snapshot", std::string(4096, 'x'), "bad magic"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string path = dir_.file(std::string("bad-") + std::to_string(&c - cases.data()));
    write_file(path, c.snapshot);
    Vm vm(dir_, "bad" + std::to_string(&c - cases.data()));
    HttpReply r = vm.load(path, mem_, "File", true);
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault_of(r).find(c.expect), std::string::npos) << fault_of(r);
    EXPECT_EQ(json::parse(vm.api.request("GET", "/").body)["state"], "Not started");
  }
  // A memory file of the wrong size, under either backend.
  const std::string mem = read_file(mem_);
  std::string short_mem = dir_.file("short.mem");
  write_file(short_mem, mem.substr(0, mem.size() - 4096));
  for (const char* backend : {"File", "Uffd"}) {
    Vm vm(dir_, std::string("badmem-") + backend);
    HttpReply r = vm.load(snap_, short_mem, backend, true);
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault_of(r).find("truncated"), std::string::npos) << fault_of(r);
    r = vm.load(snap_, dir_.file("missing.mem"), backend, true);
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault_of(r).find("Cannot open the memory file"), std::string::npos) << fault_of(r);
  }
}

TEST_F(SnapshotTest, UffdHandlerThatCannotReadTheMemoryFileEndsTheVmmInsteadOfHanging) {
  take_snapshot();
  // A copy to truncate, so the snapshot's own file stays good.
  const std::string victim = dir_.file("victim.mem");
  write_file(victim, read_file(mem_));
  Vm vm(dir_, "restored");
  ASSERT_EQ(vm.load(snap_, victim, "Uffd", false).status, 204);
  ASSERT_EQ(::truncate(victim.c_str(), 8 << 20), 0);
  ASSERT_EQ(vm.patch("/vm", {{"state", "Resumed"}}).status, 204);
  auto code = vm.proc.wait(30s);
  ASSERT_TRUE(code.has_value()) << "the VMM hangs with a vCPU waiting for a page that cannot be read\n" << vm.serial();
  EXPECT_EQ(*code, 1) << vm.proc.stderr_text();
  EXPECT_NE(vm.proc.stderr_text().find("truncated after load"), std::string::npos) << vm.proc.stderr_text();
}

TEST_F(SnapshotTest, RecordedHotPagesArePrefetchedOnTheNextRestore) {
  const uint64_t last = take_snapshot();
  const std::string hot = dir_.file("vm.hot");
  uint64_t faults_recording = 0;
  {
    Vm vm(dir_, "record");
    ASSERT_EQ(vm.load(snap_, mem_, "Uffd", true, {{"record_hot_pages", true}}).status, 204) << vm.proc.stderr_text();
    ASSERT_TRUE(vm.counted_past(last + 1, 60s));
    ASSERT_EQ(vm.put("/snapshot/hot-pages", {{"hot_pages_path", hot}}).status, 204);
    faults_recording = vm.metrics().value("kindling_vmm_uffd_faults_total", 0u);
  }
  const std::string list = read_file(hot);
  const auto recorded = static_cast<uint64_t>(std::count(list.begin(), list.end(), '\n'));
  EXPECT_GE(recorded, 7168u);
  Vm vm(dir_, "prefetched");
  ASSERT_EQ(vm.load(snap_, mem_, "Uffd", true, {{"hot_pages_path", hot}}).status, 204) << vm.proc.stderr_text();
  expect_continues(vm, last);
  json m = vm.metrics();
  const uint64_t prefetched = m.value("kindling_vmm_uffd_prefetched_pages_total", 0u);
  const uint64_t faults = m.value("kindling_vmm_uffd_faults_total", 0u);
  std::printf("hot pages recorded %llu; faults: recording run %llu, prefetched run %llu (prefetched %llu)\n",
              static_cast<unsigned long long>(recorded), static_cast<unsigned long long>(faults_recording),
              static_cast<unsigned long long>(faults), static_cast<unsigned long long>(prefetched));
  EXPECT_GT(prefetched, 0u);
  EXPECT_LT(faults, faults_recording);
}

TEST_F(SnapshotTest, LoadRequestsAreValidated) {
  Vm vm(dir_, "v");
  auto fault = [&](const json& body) { return fault_of(vm.put("/snapshot/load", body)); };
  EXPECT_NE(fault({{"snapshot_path", snap_}}).find("mem_backend"), std::string::npos);
  EXPECT_NE(fault({{"snapshot_path", snap_}, {"mem_backend", {{"backend_type", "Disk"}, {"backend_path", mem_}}}}).find("unknown variant"), std::string::npos);
  EXPECT_NE(fault({{"snapshot_path", snap_}, {"mem_backend", {{"backend_type", "File"}, {"backend_path", mem_}, {"record_hot_pages", true}}}}).find("Uffd"), std::string::npos);
  EXPECT_NE(fault({{"snapshot_path", snap_}, {"mem_backend", {{"backend_type", "File"}, {"backend_path", mem_}}}, {"vsock_override", {{"uds_path", ""}}}}).find("uds_path"), std::string::npos);
  EXPECT_NE(fault({{"snapshot_path", snap_}, {"mem_backend", {{"backend_type", "File"}, {"backend_path", mem_}}}, {"network_overrides", {{{"iface_id", "eth0"}, {"host_dev_name", "a-name-longer-than-15"}}}}}).find("host_dev_name"), std::string::npos);
  EXPECT_NE(fault_of(vm.put("/snapshot/create", {{"snapshot_type", "Diff"}, {"snapshot_path", snap_}, {"mem_file_path", mem_}})).find("Diff"), std::string::npos);
  // Configuration first makes a later load a mistake, as in Firecracker.
  ASSERT_EQ(vm.put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 32}}).status, 204);
  EXPECT_NE(fault({{"snapshot_path", snap_}, {"mem_backend", {{"backend_type", "File"}, {"backend_path", mem_}}}}).find("after configuring"), std::string::npos);
}

struct VsnapRound {
  uint64_t round = 0;
  bool rng = false, blk = false, marker = false;
};

std::vector<VsnapRound> vsnap_rounds(const std::string& serial) {
  static const std::regex line(R"(KT VSNAP (\d+) rng (\d) blk (\d) marker (\d))");
  std::vector<VsnapRound> out;
  for (auto it = std::sregex_iterator(serial.begin(), serial.end(), line); it != std::sregex_iterator(); ++it) {
    out.push_back({std::stoull((*it)[1]), (*it)[2] == "1", (*it)[3] == "1", (*it)[4] == "1"});
  }
  return out;
}

// The guest brings up virtio-rng and virtio-block once, writes a marker
// sector, and uses both queues every round without ever resetting them. A
// restored guest must go on from the round it stopped at with both devices
// answering on the same rings: a device that came back unactivated, or with
// its ring positions lost, makes the guest's transfers time out (0s).
class VirtioSnapshotTest : public SnapshotTest {
 protected:
  void devices_keep_serving(const std::string& backend);
};

TEST_F(VirtioSnapshotTest, RngAndBlockDevicesKeepServingTheSameQueuesAfterFileRestore) { devices_keep_serving("File"); }
TEST_F(VirtioSnapshotTest, RngAndBlockDevicesKeepServingTheSameQueuesAfterUffdRestore) { devices_keep_serving("Uffd"); }

void VirtioSnapshotTest::devices_keep_serving(const std::string& backend) {
  SCOPED_TRACE(backend);
  const std::string disk = dir_.file("disk.img");
  write_file(disk, std::string(1 << 20, '\0'));
  uint64_t last = 0;
  {
    Vm vm(dir_, "source");
    ASSERT_EQ(vm.put("/boot-source", {{"kernel_image_path", guest_path("virtio_snapshot")}}).status, 204);
    ASSERT_EQ(vm.put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 32}}).status, 204);
    ASSERT_EQ(vm.put("/entropy", json::object()).status, 204);
    ASSERT_EQ(vm.put("/drives/scratch", {{"drive_id", "scratch"}, {"path_on_host", disk}, {"is_root_device", false}, {"is_read_only", false}}).status, 204);
    ASSERT_EQ(vm.put("/actions", {{"action_type", "InstanceStart"}}).status, 204);
    ASSERT_TRUE(eventually([&] { return vsnap_rounds(vm.serial()).size() >= 3; }, 60s)) << vm.serial() << vm.proc.stderr_text();
    ASSERT_EQ(vm.patch("/vm", {{"state", "Paused"}}).status, 204);
    std::this_thread::sleep_for(100ms);
    auto rounds = vsnap_rounds(vm.serial());
    for (const auto& k : rounds) ASSERT_TRUE(k.rng && k.blk && k.marker) << "before the snapshot, round " << k.round << "\n" << vm.serial();
    last = rounds.back().round;
    HttpReply r = vm.put("/snapshot/create", {{"snapshot_path", snap_}, {"mem_file_path", mem_}});
    ASSERT_EQ(r.status, 204) << r.body;
    vm.proc.signal(SIGKILL);
    vm.proc.wait(5s);
  }
  // The marker sector reached the file before the snapshot.
  const std::string before = read_file(disk);
  ASSERT_EQ(before.size(), 1u << 20);
  EXPECT_NE(before.substr(512, 512), std::string(512, '\0'));

  Vm vm(dir_, "restored");
  HttpReply r = vm.load(snap_, mem_, backend, true);
  ASSERT_EQ(r.status, 204) << r.body << vm.proc.stderr_text();
  ASSERT_TRUE(eventually([&] { auto k = vsnap_rounds(vm.serial()); return !k.empty() && k.back().round > last + 3; }, 60s))
      << vm.serial() << vm.proc.stderr_text();
  {
    auto cfg = json::parse(vm.api.request("GET", "/vm/config", "").body, nullptr, false);
    ASSERT_TRUE(cfg.is_object());
    ASSERT_EQ(cfg["drives"].size(), 1u) << cfg.dump();
    EXPECT_EQ(cfg["drives"][0]["drive_id"], "scratch");
    EXPECT_EQ(cfg["drives"][0]["path_on_host"], disk);
    EXPECT_TRUE(cfg.contains("entropy") && !cfg["entropy"].is_null()) << cfg.dump();
  }
  auto rounds = vsnap_rounds(vm.serial());
  EXPECT_EQ(rounds.front().round, last + 1) << "the guest did not continue where it stopped\n" << vm.serial();
  EXPECT_EQ(vm.serial().find("KT BEGIN"), std::string::npos) << "the guest booted again";
  for (const auto& k : rounds) {
    EXPECT_TRUE(k.rng) << "rng failed after restore, round " << k.round << "\n" << vm.serial();
    EXPECT_TRUE(k.blk) << "block write/read failed after restore, round " << k.round << "\n" << vm.serial();
    EXPECT_TRUE(k.marker) << "the sector written before the snapshot did not read back, round " << k.round;
  }
  ASSERT_EQ(vm.patch("/vm", {{"state", "Paused"}}).status, 204);
  // What the restored guest wrote went to the same backing file.
  const uint64_t after = vsnap_rounds(vm.serial()).back().round;
  const std::string now = read_file(disk);
  EXPECT_NE(now.substr(512 * (8 + after % 64), 512), before.substr(512 * (8 + after % 64), 512))
      << "round " << after << "'s sector did not change in the backing file";

  // A snapshot of the restored VM carries the devices again.
  const std::string snap2 = dir_.file("vm2.snap"), mem2 = dir_.file("vm2.mem");
  r = vm.put("/snapshot/create", {{"snapshot_path", snap2}, {"mem_file_path", mem2}});
  EXPECT_EQ(r.status, 204) << r.body;
}

TEST_F(SnapshotTest, BlockBackingFileOfAnotherSizeIsRefusedAtLoad) {
  const std::string disk = dir_.file("disk.img");
  write_file(disk, std::string(1 << 20, '\0'));
  {
    Vm vm(dir_, "source");
    ASSERT_EQ(vm.put("/boot-source", {{"kernel_image_path", guest_path("virtio_snapshot")}}).status, 204);
    ASSERT_EQ(vm.put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 32}}).status, 204);
    ASSERT_EQ(vm.put("/entropy", json::object()).status, 204);
    ASSERT_EQ(vm.put("/drives/scratch", {{"drive_id", "scratch"}, {"path_on_host", disk}, {"is_root_device", false}, {"is_read_only", false}}).status, 204);
    ASSERT_EQ(vm.put("/actions", {{"action_type", "InstanceStart"}}).status, 204);
    ASSERT_TRUE(eventually([&] { return !vsnap_rounds(vm.serial()).empty(); }, 60s)) << vm.serial();
    ASSERT_EQ(vm.patch("/vm", {{"state", "Paused"}}).status, 204);
    ASSERT_EQ(vm.put("/snapshot/create", {{"snapshot_path", snap_}, {"mem_file_path", mem_}}).status, 204);
    vm.proc.signal(SIGKILL);
    vm.proc.wait(5s);
  }
  write_file(disk, std::string(2 << 20, '\0'));
  Vm vm(dir_, "restored");
  HttpReply r = vm.load(snap_, mem_, "File", true);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(fault_of(r).find("knows it as 1048576"), std::string::npos) << fault_of(r);
}

}  // namespace
}  // namespace kindling::vmm::test
