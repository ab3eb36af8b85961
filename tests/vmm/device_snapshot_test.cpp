// Snapshots of VMs with virtio-net, virtio-vsock and rate-limited devices,
// with the real kindling-vmm and the net_snapshot / vsock_snapshot /
// virtio_snapshot guests: the devices carry on after a restore on the same
// rings (net: the tap from the snapshot or from `network_overrides`; vsock:
// a fresh listener, a TRANSPORT_RESET for the guest, then new connections
// both ways), and a rate limiter still limits.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "snapshot_vm.hpp"

namespace kindling::vmm::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }
bool can_make_taps() { return ::geteuid() == 0 && ::access("/dev/net/tun", R_OK | W_OK) == 0; }

// Pauses, snapshots into snap/mem and kills the VM.
void snapshot_and_kill(SnapshotVm& vm, const std::string& snap, const std::string& mem) {
  ASSERT_EQ(vm.patch("/vm", {{"state", "Paused"}}).status, 204);
  HttpReply r = vm.put("/snapshot/create", {{"snapshot_path", snap}, {"mem_file_path", mem}});
  ASSERT_EQ(r.status, 204) << r.body << vm.proc.stderr_text();
  vm.proc.signal(SIGKILL);
  vm.proc.wait(5s);
}

// ---- virtio-net ----

// A network namespace with two taps (ktap0, ktap1), up; removed at the end.
class TwoTapNamespace {
 public:
  TwoTapNamespace() : name_("kt-snet-" + std::to_string(::getpid())) {
    sh("ip netns del " + name_);
    ok_ = sh("ip netns add " + name_);
    for (const char* tap : {"ktap0", "ktap1"}) {
      ok_ = ok_ && sh("ip -n " + name_ + " tuntap add dev " + tap + " mode tap") && sh("ip -n " + name_ + " link set " + tap + " up");
    }
  }
  ~TwoTapNamespace() { sh("ip netns del " + name_); }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

constexpr uint16_t kTypeFromGuest = 0x88b5, kTypeToGuest = 0x88b6;

// An AF_PACKET socket on one tap of the namespace: sees the guest's frames
// (the tap's host side receives what the VMM writes) and sends frames the
// VMM reads from the tap. Collects the round numbers of the guest's frames.
class TapWire {
 public:
  TapWire(const std::string& netns, const std::string& tap) {
    // Made on a thread that entered the namespace; the socket stays bound to it.
    std::thread([&] {
      int nsfd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
      if (nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) return;
      ::close(nsfd);
      ifindex_ = static_cast<int>(::if_nametoindex(tap.c_str()));
      fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
      sockaddr_ll addr{};
      addr.sll_family = AF_PACKET;
      addr.sll_protocol = htons(ETH_P_ALL);
      addr.sll_ifindex = ifindex_;
      if (fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        ::close(fd_);
        fd_ = -1;
      }
    }).join();
    if (fd_ < 0) return;
    timeval tv{0, 100'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    reader_ = std::thread([this] { read_frames(); });
  }
  ~TapWire() {
    stop_ = true;
    if (reader_.joinable()) reader_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  std::set<uint64_t> rounds() {
    std::lock_guard lock(mu_);
    return rounds_;
  }
  // One frame of EtherType 0x88b6 to `dst` (the guest's MAC).
  bool send_to_guest(const uint8_t dst[6]) {
    uint8_t f[60] = {};
    std::memcpy(f, dst, 6);
    const uint8_t src[6] = {0x02, 0, 0, 0, 0, 0x01};
    std::memcpy(f + 6, src, 6);
    f[12] = kTypeToGuest >> 8;
    f[13] = kTypeToGuest & 0xff;
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex_;
    to.sll_halen = 6;
    std::memcpy(to.sll_addr, dst, 6);
    return ::sendto(fd_, f, sizeof(f), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == sizeof(f);
  }

 private:
  void read_frames() {
    uint8_t f[2048];
    sockaddr_ll from{};
    while (!stop_) {
      socklen_t len = sizeof(from);
      ssize_t n = ::recvfrom(fd_, f, sizeof(f), 0, reinterpret_cast<sockaddr*>(&from), &len);
      // Outgoing frames (ours, to the guest) show up too: only what came in.
      if (n < 27 || from.sll_pkttype == PACKET_OUTGOING) continue;
      if ((f[12] << 8 | f[13]) != kTypeFromGuest || std::memcmp(f + 14, "KSNAP", 5) != 0) continue;
      uint64_t round = 0;
      std::memcpy(&round, f + 19, 8);
      std::lock_guard lock(mu_);
      rounds_.insert(round);
    }
  }
  int fd_ = -1;
  int ifindex_ = 0;
  std::atomic<bool> stop_{false};
  std::thread reader_;
  std::mutex mu_;
  std::set<uint64_t> rounds_;
};

struct NetRound {
  uint64_t round = 0, tx_used = 0, rx = 0;
  bool tx = false;
};

std::vector<NetRound> net_rounds(const std::string& serial) {
  static const std::regex line(R"(KT NSNAP (\d+) tx (\d) txused (\d+) rx (\d+))");
  std::vector<NetRound> out;
  for (auto it = std::sregex_iterator(serial.begin(), serial.end(), line); it != std::sregex_iterator(); ++it) {
    out.push_back({std::stoull((*it)[1]), std::stoull((*it)[3]), std::stoull((*it)[4]), (*it)[2] == "1"});
  }
  return out;
}

const uint8_t kGuestMac[6] = {0x06, 0x00, 0x0a, 0x00, 0x00, 0x02};

// Frames both ways until the guest has counted `rx` of ours.
bool guest_counts_frames(SnapshotVm& vm, TapWire& wire, uint64_t rx) {
  return eventually([&] {
    auto k = net_rounds(vm.serial());
    if (!k.empty() && k.back().rx >= rx) return true;
    wire.send_to_guest(kGuestMac);
    std::this_thread::sleep_for(50ms);
    return false;
  }, 30s);
}

// The restored guest goes on from `last` with every TX completing, the TX
// used index equal to the round (one frame a round: no restart at 0), its
// frames on `wire`, and RX frames still counted.
void expect_net_continues(SnapshotVm& vm, TapWire& wire, uint64_t last, uint64_t rx_before) {
  ASSERT_TRUE(eventually([&] { auto k = net_rounds(vm.serial()); return !k.empty() && k.back().round > last + 3; }, 60s))
      << vm.serial() << vm.proc.stderr_text();
  auto rounds = net_rounds(vm.serial());
  EXPECT_EQ(rounds.front().round, last + 1) << vm.serial();
  EXPECT_EQ(vm.serial().find("KT BEGIN"), std::string::npos) << "the guest booted again";
  for (const NetRound& k : rounds) {
    EXPECT_TRUE(k.tx) << "TX timed out after restore, round " << k.round << "\n" << vm.serial();
    EXPECT_EQ(k.tx_used, k.round & 0xffff) << "the TX used index did not continue, round " << k.round;
  }
  ASSERT_TRUE(eventually([&] { return wire.rounds().count(last + 3) == 1; }, 10s)) << "the restored guest's frames did not reach the tap";
  EXPECT_TRUE(guest_counts_frames(vm, wire, rx_before + 2)) << "frames to the restored guest were not received\n" << vm.serial();
}

TEST(DeviceSnapshotTest, NetDeviceContinuesOnItsRingsThroughTheSavedTapOrAnOverride) {
  if (!can_make_taps()) GTEST_SKIP() << "needs root and /dev/net/tun";
  TwoTapNamespace ns;
  ASSERT_TRUE(ns.ok()) << "cannot set up the network namespace and taps";
  TempDir dir;
  const std::string snap = dir.file("vm.snap"), mem = dir.file("vm.mem");
  uint64_t last = 0, rx_before = 0;
  {
    TapWire wire0(ns.name(), "ktap0");
    ASSERT_TRUE(wire0.ok());
    SnapshotVm vm(dir, "source", ns.name());
    ASSERT_EQ(vm.put("/boot-source", {{"kernel_image_path", guest_path("net_snapshot")}}).status, 204);
    ASSERT_EQ(vm.put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 32}}).status, 204);
    ASSERT_EQ(vm.put("/network-interfaces/eth0", {{"iface_id", "eth0"}, {"host_dev_name", "ktap0"}, {"guest_mac", "06:00:0a:00:00:02"}}).status, 204);
    ASSERT_EQ(vm.put("/actions", {{"action_type", "InstanceStart"}}).status, 204);
    ASSERT_TRUE(guest_counts_frames(vm, wire0, 2)) << vm.serial() << vm.proc.stderr_text();
    ASSERT_TRUE(eventually([&] { return wire0.rounds().size() >= 3; }, 30s)) << vm.serial();
    ASSERT_EQ(vm.patch("/vm", {{"state", "Paused"}}).status, 204);
    std::this_thread::sleep_for(100ms);
    auto rounds = net_rounds(vm.serial());
    last = rounds.back().round;
    rx_before = rounds.back().rx;
    for (const NetRound& k : rounds) ASSERT_TRUE(k.tx && k.tx_used == k.round) << vm.serial();
    snapshot_and_kill(vm, snap, mem);
  }
  {
    // A tap name in the net record that could never be one, behind valid
    // checksums: refused by the decoder, not handed to TUNSETIFF.
    std::string bad = read_file(snap);
    const size_t at = bad.find("ktap0");
    ASSERT_NE(at, std::string::npos);
    bad[at + 2] = '/';
    fix_body_crc(bad);
    write_file(dir.file("bad.snap"), bad);
    SnapshotVm vm(dir, "bad-tap", ns.name());
    HttpReply r = vm.load(dir.file("bad.snap"), mem, "File", true);
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault_of(r).find("a net device without a valid tap name"), std::string::npos) << fault_of(r);
  }
  {
    // An override must name an interface of the snapshot.
    SnapshotVm vm(dir, "unknown-iface", ns.name());
    HttpReply r = vm.load(snap, mem, "File", true, json::object(), {{"network_overrides", {{{"iface_id", "eth9"}, {"host_dev_name", "ktap1"}}}}});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault_of(r).find("The network override for `eth9` names an interface the snapshot does not have"), std::string::npos) << fault_of(r);
  }
  {
    // The tap the snapshot names.
    TapWire wire0(ns.name(), "ktap0");
    SnapshotVm vm(dir, "restored", ns.name());
    HttpReply r = vm.load(snap, mem, "File", true);
    ASSERT_EQ(r.status, 204) << r.body << vm.proc.stderr_text();
    expect_net_continues(vm, wire0, last, rx_before);
    vm.proc.signal(SIGKILL);
    vm.proc.wait(5s);
  }
  {
    // network_overrides: the same snapshot, restored onto ktap1.
    TapWire wire0(ns.name(), "ktap0"), wire1(ns.name(), "ktap1");
    SnapshotVm vm(dir, "overridden", ns.name());
    HttpReply r = vm.load(snap, mem, "Uffd", true, json::object(), {{"network_overrides", {{{"iface_id", "eth0"}, {"host_dev_name", "ktap1"}}}}});
    ASSERT_EQ(r.status, 204) << r.body << vm.proc.stderr_text();
    expect_net_continues(vm, wire1, last, rx_before);
    EXPECT_TRUE(wire0.rounds().empty()) << "frames of the overridden restore reached the snapshot's tap";
    json cfg = vm.get("/vm/config");
    ASSERT_EQ(cfg["network-interfaces"].size(), 1u) << cfg.dump();
    EXPECT_EQ(cfg["network-interfaces"][0]["host_dev_name"], "ktap1");
    EXPECT_EQ(cfg["network-interfaces"][0]["guest_mac"], "06:00:0a:00:00:02");
  }
}

// ---- virtio-vsock ----

int unix_socket_at(const std::string& path, bool listen_on_it) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  int rc = listen_on_it ? ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
                        : ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  if (rc != 0 || (listen_on_it && ::listen(fd, 8) != 0)) {
    ::close(fd);
    return -1;
  }
  timeval tv{30, 0};  // no read may hang the test
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

std::string read_line(int fd) {
  std::string line;
  char ch;
  while (line.size() < 64 && ::read(fd, &ch, 1) == 1 && ch != '\n') line.push_back(ch);
  return line;
}

// Connects through the VMM's socket to guest port 1234 and checks an echo.
// Returns the open connection (or -1).
int echo_connection(const std::string& uds, const std::string& text) {
  int fd = unix_socket_at(uds, false);
  if (fd < 0) return -1;
  const std::string connect = "CONNECT 1234\n";
  std::string echo(text.size(), '\0');
  if (::write(fd, connect.data(), connect.size()) != static_cast<ssize_t>(connect.size()) || read_line(fd).rfind("OK ", 0) != 0 ||
      ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::recv(fd, echo.data(), echo.size(), MSG_WAITALL) != static_cast<ssize_t>(echo.size()) || echo != text) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(DeviceSnapshotTest, VsockRestoreResetsTheGuestsConnectionsAndNewOnesWorkBothWays) {
  TempDir dir;
  const std::string snap = dir.file("vm.snap"), mem = dir.file("vm.mem");
  const std::string uds = dir.file("v.sock"), uds2 = dir.file("v2.sock");
  {
    SnapshotVm vm(dir, "source");
    ASSERT_EQ(vm.put("/boot-source", {{"kernel_image_path", guest_path("vsock_snapshot")}}).status, 204);
    ASSERT_EQ(vm.put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 32}}).status, 204);
    ASSERT_EQ(vm.put("/vsock", {{"guest_cid", 7}, {"uds_path", uds}}).status, 204);
    ASSERT_EQ(vm.put("/actions", {{"action_type", "InstanceStart"}}).status, 204);
    ASSERT_TRUE(eventually([&] { return vm.serial().find("KT INFO vsock ready") != std::string::npos; }, 30s)) << vm.serial();
    // A connection open at the snapshot: the guest holds it, the host side
    // dies with this VMM.
    int open_conn = echo_connection(uds, "before the snapshot");
    ASSERT_GE(open_conn, 0) << vm.serial() << vm.proc.stderr_text();
    ASSERT_TRUE(eventually([&] { return vm.serial().find("KT VSOCK conns 1") != std::string::npos; }, 10s)) << vm.serial();
    snapshot_and_kill(vm, snap, mem);
    ::close(open_conn);
  }
  {
    // Damaged vsock records, refused by name while the VMM stays up: cut
    // short, and a CID of 1 behind valid checksums (the u32 before the
    // uds_path's length).
    const std::string good = read_file(snap);
    const size_t path_at = good.find(uds);
    ASSERT_NE(path_at, std::string::npos);
    std::string cid = good;
    const uint32_t one = 1;
    std::memcpy(cid.data() + path_at - 8, &one, 4);
    fix_body_crc(cid);
    std::string cut = good.substr(0, path_at + 3);
    fix_body_crc(cut);  // checksums right, header's body length wrong
    struct Case {
      std::string name, bytes, expect;
    };
    for (const Case& c : {Case{"short", good.substr(0, good.size() - 7), "truncated"}, Case{"cut", cut, "truncated"},
                          Case{"cid", cid, "vsock guest CID 1 (3 or more)"}}) {
      SCOPED_TRACE(c.name);
      write_file(dir.file(c.name + ".snap"), c.bytes);
      SnapshotVm vm(dir, "bad-" + c.name);
      HttpReply r = vm.load(dir.file(c.name + ".snap"), mem, "File", true);
      EXPECT_EQ(r.status, 400);
      EXPECT_NE(fault_of(r).find(c.expect), std::string::npos) << fault_of(r);
      EXPECT_EQ(vm.get("/")["state"], "Not started");
    }
  }
  {
    // The snapshot's uds_path is still there (the VMM was killed): binding it
    // again is refused, as in Firecracker; vsock_override picks a new one.
    SnapshotVm vm(dir, "same-path");
    HttpReply r = vm.load(snap, mem, "File", true);
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(fault_of(r).find("Cannot restore the vsock device"), std::string::npos) << fault_of(r);
  }
  // The guest's connection to host port 5000 after the reset: served on a
  // thread that a failed assertion cannot leave running (the listener is
  // shut down and the thread joined on the way out).
  struct HostPort {
    int listener = -1;
    std::atomic<bool> echoed{false};
    std::thread thread;
    ~HostPort() {
      ::shutdown(listener, SHUT_RDWR);
      if (thread.joinable()) thread.join();
      ::close(listener);
    }
  } host;
  host.listener = unix_socket_at(uds2 + "_5000", true);
  ASSERT_GE(host.listener, 0);
  host.thread = std::thread([&host] {
    int c = ::accept4(host.listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    timeval tv{30, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[16];
    if (::recv(c, buf, sizeof(buf), MSG_WAITALL) == 16 && ::write(c, buf, 16) == 16) host.echoed = true;
    char b;
    [[maybe_unused]] ssize_t n = ::read(c, &b, 1);  // until the guest's SHUTDOWN (or the VMM's end)
    ::close(c);
  });
  SnapshotVm vm(dir, "restored");
  HttpReply r = vm.load(snap, mem, "Uffd", true, json::object(), {{"vsock_override", {{"uds_path", uds2}}}});
  ASSERT_EQ(r.status, 204) << r.body << vm.proc.stderr_text();
  ASSERT_TRUE(eventually([&] { return vm.serial().find("KT VSOCK reset 1 dropped 1 cid 7") != std::string::npos; }, 30s))
      << "the guest never saw TRANSPORT_RESET\n" << vm.serial() << vm.proc.stderr_text();
  EXPECT_TRUE(eventually([&] { return vm.serial().find("KT VSOCK outbound 1") != std::string::npos; }, 30s))
      << "a guest-initiated connection after the restore failed\n" << vm.serial() << vm.proc.stderr_text();
  EXPECT_TRUE(host.echoed.load());
  int after = echo_connection(uds2, "after the restore");
  EXPECT_GE(after, 0) << "a host-initiated connection after the restore failed\n" << vm.serial() << vm.proc.stderr_text();
  if (after >= 0) ::close(after);
  EXPECT_EQ(vm.serial().find("KT BEGIN"), std::string::npos) << "the guest booted again";
  EXPECT_EQ(vm.serial().find("KT VSOCK reset 2"), std::string::npos) << "more than one reset event";
  json cfg = vm.get("/vm/config");
  EXPECT_EQ(cfg["vsock"]["uds_path"], uds2) << cfg.dump();
  EXPECT_EQ(cfg["vsock"]["guest_cid"], 7) << cfg.dump();
  // The restored VM snapshots again, with the new path in the record.
  ASSERT_EQ(vm.patch("/vm", {{"state", "Paused"}}).status, 204);
  r = vm.put("/snapshot/create", {{"snapshot_path", dir.file("again.snap")}, {"mem_file_path", dir.file("again.mem")}});
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_NE(read_file(dir.file("again.snap")).find(uds2), std::string::npos);
}

// ---- rate limiters ----

struct VsnapRound {
  uint64_t round = 0;
  bool rng = false;
};

std::vector<VsnapRound> vsnap_rounds(const std::string& serial) {
  static const std::regex line(R"(KT VSNAP (\d+) rng (\d) blk (\d) marker (\d))");
  std::vector<VsnapRound> out;
  for (auto it = std::sregex_iterator(serial.begin(), serial.end(), line); it != std::sregex_iterator(); ++it) {
    out.push_back({std::stoull((*it)[1]), (*it)[2] == "1"});
  }
  return out;
}

// 32 bytes of entropy per 400 ms: the virtio_snapshot guest's rounds (32
// bytes each) slow to ~2.5 a second, before the snapshot and after the
// restore, which carries the limiter's config and buckets.
TEST(DeviceSnapshotTest, RateLimiterSurvivesTheRestore) {
  TempDir dir;
  const std::string snap = dir.file("vm.snap"), mem = dir.file("vm.mem"), disk = dir.file("disk.img");
  write_file(disk, std::string(1 << 20, '\0'));
  const json limiter = {{"bandwidth", {{"size", 32}, {"refill_time", 400}}}};
  uint64_t last = 0;
  {
    SnapshotVm vm(dir, "source");
    ASSERT_EQ(vm.put("/boot-source", {{"kernel_image_path", guest_path("virtio_snapshot")}}).status, 204);
    ASSERT_EQ(vm.put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 32}}).status, 204);
    ASSERT_EQ(vm.put("/entropy", {{"rate_limiter", limiter}}).status, 204);
    ASSERT_EQ(vm.put("/drives/scratch", {{"drive_id", "scratch"}, {"path_on_host", disk}, {"is_root_device", false}, {"is_read_only", false}}).status, 204);
    ASSERT_EQ(vm.put("/actions", {{"action_type", "InstanceStart"}}).status, 204);
    ASSERT_TRUE(eventually([&] { return vsnap_rounds(vm.serial()).size() >= 2; }, 60s)) << vm.serial() << vm.proc.stderr_text();
    ASSERT_EQ(vm.patch("/vm", {{"state", "Paused"}}).status, 204);
    last = vsnap_rounds(vm.serial()).back().round;
    snapshot_and_kill(vm, snap, mem);
  }
  SnapshotVm vm(dir, "restored");
  HttpReply r = vm.load(snap, mem, "File", true);
  ASSERT_EQ(r.status, 204) << r.body << vm.proc.stderr_text();
  ASSERT_TRUE(eventually([&] { return !vsnap_rounds(vm.serial()).empty(); }, 30s)) << vm.serial() << vm.proc.stderr_text();
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t first = vsnap_rounds(vm.serial()).back().round;
  std::this_thread::sleep_for(3s);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto rounds = vsnap_rounds(vm.serial());
  const uint64_t done = rounds.back().round - first;
  std::printf("rate-limited rng after restore: %llu rounds in %.1f s\n", static_cast<unsigned long long>(done), secs);
  EXPECT_EQ(rounds.front().round, last + 1) << vm.serial();
  for (const auto& k : rounds) EXPECT_TRUE(k.rng) << "round " << k.round << "\n" << vm.serial();
  EXPECT_GE(done, 2u) << "the limited device stopped serving";
  EXPECT_LE(static_cast<double>(done), secs / 0.4 + 2) << "the restored rng is not limited any more";
  json cfg = vm.get("/vm/config");
  EXPECT_EQ(cfg["entropy"]["rate_limiter"]["bandwidth"]["size"], 32) << cfg.dump();
  EXPECT_EQ(cfg["entropy"]["rate_limiter"]["bandwidth"]["refill_time"], 400) << cfg.dump();
}

}  // namespace
}  // namespace kindling::vmm::test
