// virtio devices end to end: the real kindling-vmm on real KVM, with test
// guests (tests/guests) that drive the devices through their own drivers.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
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
  expect_passed(a, "virtio_rng", 13);
  expect_passed(b, "virtio_rng", 13);
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

TEST(VirtioEntropy, WithoutTheDeviceTheGuestFindsNone) {
  TempDir dir;
  GuestRun run = boot(dir, "virtio_rng", nlohmann::json::object());
  EXPECT_NE(run.serial.find("KT FAIL rng_found_on_cmdline"), std::string::npos) << run.serial;
}

}  // namespace
}  // namespace kindling::vmm::test
