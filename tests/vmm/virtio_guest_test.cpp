// virtio devices end to end: the real kindling-vmm on real KVM, with test
// guests (tests/guests) that drive the devices through their own drivers.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <regex>

#include "vmm_process.hpp"

namespace kindling::vmm::test {
namespace {

using namespace std::chrono_literals;
constexpr auto kGuestDeadline = 60s;

struct GuestRun {
  int exit_code = -1;
  std::string serial;
  std::string log;
};

GuestRun boot(const TempDir& dir, const std::string& guest, const nlohmann::json& devices,
              const std::vector<std::string>& more_args = {}) {
  nlohmann::json j = {
      {"boot-source", {{"kernel_image_path", guest_path(guest)}, {"boot_args", "console=ttyS0"}}},
      {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 64}}},
  };
  for (auto it = devices.begin(); it != devices.end(); ++it) j[it.key()] = it.value();
  write_file(dir.file("vm.json"), j.dump());
  std::vector<std::string> args = {"--config-file", dir.file("vm.json"), "--no-api"};
  args.insert(args.end(), more_args.begin(), more_args.end());
  VmmProcess vmm(args, dir);
  GuestRun run;
  run.exit_code = vmm.wait(kGuestDeadline).value_or(-1);
  run.serial = vmm.stdout_text();
  run.log = vmm.stderr_text();
  return run;
}

void expect_passed(const GuestRun& run, const std::string& name, int min_pass) {
  EXPECT_EQ(run.exit_code, 0) << run.log;
  EXPECT_NE(run.serial.find("KT BEGIN " + name), std::string::npos) << run.serial << run.log;
  EXPECT_GE(count_lines_with_prefix(run.serial, "KT PASS "), min_pass) << run.serial;
  EXPECT_EQ(count_lines_with_prefix(run.serial, "KT FAIL "), 0) << run.serial << run.log;
  EXPECT_EQ(count_lines_with_prefix(run.serial, "KT END "), 1) << run.serial;
}

std::string capture(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (std::regex_search(text, m, std::regex(pattern))) return m[1];
  return "";
}

TEST(VirtioEntropy, GuestReadsRandomBytesThatDifferBetweenRuns) {
  TempDir dir1, dir2;
  nlohmann::json devices = {{"entropy", nlohmann::json::object()}};
  GuestRun a = boot(dir1, "virtio_rng", devices);
  GuestRun b = boot(dir2, "virtio_rng", devices);
  expect_passed(a, "virtio_rng", 16);
  expect_passed(b, "virtio_rng", 16);
  // The used-buffer interrupt went irqfd -> in-kernel IOAPIC -> LAPIC -> the guest's IDT.
  EXPECT_NE(a.serial.find("KT PASS rng_interrupt_delivered_through_ioapic"), std::string::npos) << a.serial;
  std::string ea = capture(a.serial, "KT INFO entropy ([0-9a-f]{128})");
  std::string eb = capture(b.serial, "KT INFO entropy ([0-9a-f]{128})");
  ASSERT_EQ(ea.size(), 128u) << a.serial;
  ASSERT_EQ(eb.size(), 128u) << b.serial;
  EXPECT_NE(ea, eb);
  EXPECT_NE(ea, std::string(128, '0'));
  // The VMM announced the device on the command line the guest parsed.
  EXPECT_NE(a.serial.find("KT INFO rng at 0xd0000000 irq 5"), std::string::npos) << a.serial;
  // Each hostile chain was refused by the walker, which said why.
  EXPECT_NE(a.log.find("longer than its table (a loop?); marked DEVICE_NEEDS_RESET"), std::string::npos) << a.log;
  EXPECT_NE(a.log.find("0xfffffffffffff000+0x2000 is outside guest memory"), std::string::npos) << a.log;
  EXPECT_NE(a.log.find("notifications by ioeventfd"), std::string::npos) << a.log;
}

// The same guest with KVM's ioeventfd turned off: QueueNotify writes exit to
// the VMM and the transport forwards them to the device thread.
TEST(VirtioEntropy, MmioExitFallbackForNotifications) {
  TempDir dir;
  GuestRun run = boot(dir, "virtio_rng", {{"entropy", nlohmann::json::object()}}, {"--no-ioeventfd"});
  expect_passed(run, "virtio_rng", 13);
  EXPECT_NE(run.log.find("notifications by MMIO exit"), std::string::npos) << run.log;
}

// A bandwidth limit of 64 bytes per 400 ms: the guest's ~220 bytes of
// successful reads must take about a second, and still all succeed.
TEST(VirtioEntropy, RateLimiterSlowsTheGuestDown) {
  TempDir dir;
  nlohmann::json limited = {{"entropy", {{"rate_limiter", {{"bandwidth", {{"size", 64}, {"refill_time", 400}}}}}}}};
  auto t0 = std::chrono::steady_clock::now();
  GuestRun run = boot(dir, "virtio_rng", limited);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  expect_passed(run, "virtio_rng", 13);
  EXPECT_GE(elapsed, 800ms) << "the limiter did not slow the guest";
}

TEST(VirtioEntropy, WithoutTheDeviceTheGuestFindsNone) {
  TempDir dir;
  GuestRun run = boot(dir, "virtio_rng", nlohmann::json::object());
  EXPECT_NE(run.serial.find("KT FAIL rng_found_on_cmdline"), std::string::npos) << run.serial;
}

uint64_t pattern_word(uint64_t offset) { return (offset * 0x9e3779b97f4a7c15ull) ^ 0x4b696e646c696e67ull; }

TEST(VirtioBlock, GuestWritesFlushesAndReadsBackThroughTheFile) {
  TempDir dir;
  const std::string scratch = dir.file("scratch.img"), golden = dir.file("golden.img");
  write_file(scratch, std::string(8 << 20, '\0'));
  const std::string golden_content = "GOLDEN" + std::string((1 << 20) - 6, 'g');
  write_file(golden, golden_content);
  nlohmann::json devices = {{"drives",
                             {{{"drive_id", "scratch"}, {"path_on_host", scratch}, {"is_root_device", true},
                               {"is_read_only", false}, {"cache_type", "Writeback"}},
                              {{"drive_id", "golden"}, {"path_on_host", golden}, {"is_root_device", false},
                               {"is_read_only", true}}}}};
  GuestRun run = boot(dir, "virtio_block", devices);
  expect_passed(run, "virtio_block", 15);

  // The file holds exactly the guest's pattern, and both checksums the guest
  // printed are the checksum of that pattern.
  const std::string img = read_file(scratch);
  ASSERT_EQ(img.size(), 8u << 20);
  uint64_t sum = 0xcbf29ce484222325ull;
  bool pattern = true;
  for (uint64_t off = 0; off < (3u << 20); off += 8) {
    uint64_t w;
    std::memcpy(&w, img.data() + off, 8);
    pattern = pattern && w == pattern_word(off);
    sum = (sum ^ w) * 0x100000001b3ull;
  }
  EXPECT_TRUE(pattern);
  EXPECT_EQ(img.find_first_not_of('\0', 3u << 20), std::string::npos) << "bytes past the pattern changed";
  char hex[32];
  std::snprintf(hex, sizeof(hex), "0x%llx", static_cast<unsigned long long>(sum));
  EXPECT_NE(run.serial.find(std::string("KT INFO block wrote 3145728 bytes checksum ") + hex), std::string::npos) << run.serial;
  EXPECT_NE(run.serial.find(std::string("KT INFO block read 3145728 bytes checksum ") + hex), std::string::npos) << run.serial;
  EXPECT_EQ(read_file(golden), golden_content) << "a read-only drive was written";
  // The root drive is announced to Linux guests as /dev/vda.
  EXPECT_NE(run.log.find("virtio block:scratch at 0xd0000000 irq 5"), std::string::npos) << run.log;
}

TEST(VirtioBlock, DriveApiRefusesBadInputLikeFirecracker) {
  TempDir dir;
  write_file(dir.file("disk.img"), std::string(1 << 20, '\0'));
  VmmProcess vmm({"--api-sock", dir.file("api.sock")}, dir);
  ApiClient api(dir.file("api.sock"));
  ASSERT_TRUE(api.connected());
  auto drive = [&](const std::string& id, const std::string& path, bool root) {
    return nlohmann::json{{"drive_id", id}, {"path_on_host", path}, {"is_root_device", root}, {"is_read_only", false}}.dump();
  };
  HttpReply missing = api.request("PUT", "/drives/a", drive("a", dir.file("nope.img"), false));
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("Unable to open or create the backing file"), std::string::npos) << missing.body;
  HttpReply mismatch = api.request("PUT", "/drives/a", drive("b", dir.file("disk.img"), false));
  EXPECT_NE(mismatch.body.find("The id from the path does not match the id from the body!"), std::string::npos) << mismatch.body;
  EXPECT_EQ(api.request("PUT", "/drives/root", drive("root", dir.file("disk.img"), true)).status, 204);
  HttpReply second_root = api.request("PUT", "/drives/other", drive("other", dir.file("disk.img"), true));
  EXPECT_NE(second_root.body.find("A root block device already exists!"), std::string::npos) << second_root.body;
  HttpReply unknown = api.request("PUT", "/drives/x", R"({"drive_id":"x","path_on_host":"/x","is_root_device":false,"turbo":1})");
  EXPECT_NE(unknown.body.find("unknown field `turbo`"), std::string::npos) << unknown.body;
  HttpReply bad_limiter = api.request("PUT", "/entropy", R"({"rate_limiter":{"bandwidth":{"size":0,"refill_time":100}}})");
  EXPECT_EQ(bad_limiter.status, 400);
  HttpReply config = api.request("GET", "/vm/config");
  EXPECT_NE(config.body.find("\"drive_id\":\"root\""), std::string::npos) << config.body;
}

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

bool read_exact(int fd, std::string& out, size_t n) {
  out.clear();
  char buf[8192];
  while (out.size() < n) {
    ssize_t got = ::read(fd, buf, std::min(sizeof(buf), n - out.size()));
    if (got <= 0) return false;
    out.append(buf, static_cast<size_t>(got));
  }
  return true;
}

std::string read_line(int fd) {
  std::string line;
  char ch;
  while (line.size() < 64 && ::read(fd, &ch, 1) == 1 && ch != '\n') line.push_back(ch);
  return line;
}

std::string vsock_pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  for (uint32_t i = 0; i < n; ++i) s[i] = static_cast<char>(static_cast<uint8_t>(i * 131u + seed * 29u + (i >> 8)));
  return s;
}

// Firecracker's host-side protocol, both ways, with five streams open at once:
// three host-initiated echo connections and two guest-initiated ones.
TEST(VirtioVsock, StreamsBothWaysWithConcurrentConnections) {
  TempDir dir;
  const std::string uds = dir.file("v.sock");
  int listener = unix_socket_at(uds + "_5000", true);
  ASSERT_GE(listener, 0);
  std::atomic<int> guest_streams_ok{0};
  std::vector<std::thread> host_side;
  std::thread acceptor([&] {
    for (int i = 0; i < 2; ++i) {
      int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      host_side.emplace_back([c, &guest_streams_ok] {
        timeval tv{30, 0};
        ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        std::string got;
        if (read_exact(c, got, 32 * 1024)) {
          for (uint32_t seed : {0u, 1u}) {
            if (got != vsock_pattern(32 * 1024, seed)) continue;
            std::string reply = vsock_pattern(32 * 1024, 100 + seed);
            if (::write(c, reply.data(), reply.size()) == static_cast<ssize_t>(reply.size())) {
              char b;
              if (::read(c, &b, 1) == 0) ++guest_streams_ok;  // the guest's SHUTDOWN closes our end
            }
          }
        }
        ::close(c);
      });
    }
  });

  nlohmann::json j = {
      {"boot-source", {{"kernel_image_path", guest_path("virtio_vsock")}, {"boot_args", "console=ttyS0"}}},
      {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 64}}},
      {"vsock", {{"guest_cid", 7}, {"uds_path", uds}}},
  };
  write_file(dir.file("vm.json"), j.dump());
  VmmProcess vmm({"--config-file", dir.file("vm.json"), "--no-api"}, dir);
  ASSERT_TRUE(eventually([&] { return vmm.stdout_text().find("KT INFO vsock ready") != std::string::npos; }, 30s))
      << vmm.stdout_text() << vmm.stderr_text();

  // A port nobody listens on in the guest, and a malformed first line: closed, no OK.
  int nobody = unix_socket_at(uds, false);
  ASSERT_GE(nobody, 0);
  ASSERT_EQ(::write(nobody, "CONNECT 999\n", 12), 12);
  EXPECT_EQ(read_line(nobody), "");
  ::close(nobody);
  int garbage = unix_socket_at(uds, false);
  ASSERT_EQ(::write(garbage, "HELLO THERE\n", 12), 12);
  EXPECT_EQ(read_line(garbage), "");
  ::close(garbage);

  std::atomic<int> echoes_ok{0};
  std::vector<std::thread> clients;
  for (uint32_t i = 0; i < 3; ++i) {
    clients.emplace_back([&, i] {
      int fd = unix_socket_at(uds, false);
      if (fd < 0) return;
      const std::string connect = "CONNECT 1234\n";
      std::string ok;
      if (::write(fd, connect.data(), connect.size()) == static_cast<ssize_t>(connect.size()) &&
          (ok = read_line(fd)).rfind("OK ", 0) == 0) {
        const std::string data = vsock_pattern(64 * 1024, 10 + i);
        std::string echo;
        if (::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) &&
            read_exact(fd, echo, data.size()) && echo == data) {
          ++echoes_ok;
        }
      }
      ::close(fd);
    });
  }
  for (auto& t : clients) t.join();
  auto code = vmm.wait(kGuestDeadline);
  acceptor.join();
  for (auto& t : host_side) t.join();
  ::close(listener);
  GuestRun run{code.value_or(-1), vmm.stdout_text(), vmm.stderr_text()};
  EXPECT_EQ(echoes_ok.load(), 3);
  EXPECT_EQ(guest_streams_ok.load(), 2);
  expect_passed(run, "virtio_vsock", 6);
  EXPECT_NE(run.serial.find("KT INFO vsock guest cid 7"), std::string::npos) << run.serial;
}

// Runs a shell command; true on exit status 0.
bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

// A network namespace this test owns, with a tap at 10.0.0.1/24; removed at the end.
class TapNamespace {
 public:
  TapNamespace() : name_("kt-net-" + std::to_string(::getpid())) {
    sh("ip netns del " + name_);
    ok_ = sh("ip netns add " + name_) && sh("ip -n " + name_ + " tuntap add dev ktap0 mode tap") &&
          sh("ip -n " + name_ + " addr add 10.0.0.1/24 dev ktap0") && sh("ip -n " + name_ + " link set ktap0 up") &&
          sh("ip -n " + name_ + " link set lo up");
  }
  ~TapNamespace() { sh("ip netns del " + name_); }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

// The guest answers ARP and echoes three UDP datagrams; `iface` adds fields
// to its network interface; *echoes_out is how many echoes came back.
void run_net_guest(const nlohmann::json& iface, int* echoes_out) {
  TapNamespace ns;
  ASSERT_TRUE(ns.ok()) << "cannot set up the network namespace and tap";
  TempDir dir;
  nlohmann::json eth0 = {{"iface_id", "eth0"}, {"host_dev_name", "ktap0"}, {"guest_mac", "06:00:0a:00:00:02"}};
  for (auto it = iface.begin(); it != iface.end(); ++it) eth0[it.key()] = it.value();
  nlohmann::json j = {
      {"boot-source", {{"kernel_image_path", guest_path("virtio_net")}, {"boot_args", "console=ttyS0"}}},
      {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 64}}},
      {"network-interfaces", nlohmann::json::array({eth0})},
  };
  write_file(dir.file("vm.json"), j.dump());
  // The VMM opens the tap inside the namespace, as a jailed VMM would.
  VmmProcess vmm("/usr/sbin/ip", {"netns", "exec", ns.name(), vmm_binary(), "--config-file", dir.file("vm.json"), "--no-api"}, dir);
  ASSERT_TRUE(eventually([&] { return vmm.stdout_text().find("KT INFO net ready") != std::string::npos; }, 30s))
      << vmm.stdout_text() << vmm.stderr_text();

  // The host end: a UDP socket made inside the namespace (setns on a helper thread).
  int echoes = 0;
  std::thread host([&] {
    int nsfd = ::open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) return;
    ::close(nsfd);
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in guest{};
    guest.sin_family = AF_INET;
    guest.sin_port = htons(7);
    guest.sin_addr.s_addr = htonl(0x0a000002);
    for (int i = 0; i < 3; ++i) {
      const std::string msg = "kindling echo " + std::to_string(i);
      for (int attempt = 0; attempt < 3; ++attempt) {
        ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&guest), sizeof(guest));
        char buf[256];
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n > 0 && std::string(buf, static_cast<size_t>(n)) == msg) {
          ++echoes;
          break;
        }
      }
    }
    ::close(fd);
  });
  host.join();
  auto code = vmm.wait(kGuestDeadline);
  GuestRun run{code.value_or(-1), vmm.stdout_text(), vmm.stderr_text()};
  *echoes_out = echoes;
  expect_passed(run, "virtio_net", 3);
  EXPECT_NE(run.serial.find("KT INFO answered arp"), std::string::npos) << run.serial;
}

bool can_make_taps() { return ::geteuid() == 0 && ::access("/dev/net/tun", R_OK | W_OK) == 0; }

TEST(VirtioNet, GuestAnswersArpAndEchoesUdpThroughATap) {
  if (!can_make_taps()) GTEST_SKIP() << "needs root and /dev/net/tun";
  int echoes = 0;
  run_net_guest(nlohmann::json::object(), &echoes);
  EXPECT_EQ(echoes, 3);
}

// One frame per 250 ms each way: the ARP answer and three echoes take
// ~750 ms of the guest's TX budget, and all still arrive (the limiters'
// timers, not new guest kicks, let the held frames go).
TEST(VirtioNet, RateLimitersSlowFramesInBothDirections) {
  if (!can_make_taps()) GTEST_SKIP() << "needs root and /dev/net/tun";
  const auto one_frame = nlohmann::json::parse(R"({"ops": {"size": 1, "refill_time": 250}})");
  int echoes = 0;
  auto t0 = std::chrono::steady_clock::now();
  run_net_guest({{"rx_rate_limiter", one_frame}, {"tx_rate_limiter", one_frame}}, &echoes);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(echoes, 3);
  EXPECT_GE(elapsed, 700ms) << "the limiters did not slow the guest";
}

}  // namespace
}  // namespace kindling::vmm::test
