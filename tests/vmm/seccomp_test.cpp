// Every thread of a running kindling-vmm is under a seccomp filter, and a
// logger configured through the API writes where it was told.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "vmm_process.hpp"

namespace kindling::vmm::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

TEST(VmmHardening, EveryThreadRunsUnderSeccompAndLogsGoToTheLogger) {
  TempDir dir;
  VmmProcess vmm({"--api-sock", dir.file("api.sock")}, dir);
  ApiClient api(dir.file("api.sock"));
  ASSERT_TRUE(api.connected());
  ASSERT_EQ(api.request("PUT", "/logger", json{{"log_path", dir.file("vmm.log")}, {"level", "Debug"}, {"show_level", true}}.dump()).status, 204);
  ASSERT_EQ(api.request("PUT", "/boot-source", json{{"kernel_image_path", guest_path("spin")}}.dump()).status, 204);
  ASSERT_EQ(api.request("PUT", "/machine-config", json{{"vcpu_count", 2}, {"mem_size_mib", 64}}.dump()).status, 204);
  ASSERT_EQ(api.request("PUT", "/serial", json{{"serial_out_path", dir.file("serial")}}.dump()).status, 204);
  // A virtio device brings the device thread, which must be filtered too.
  ASSERT_EQ(api.request("PUT", "/entropy", "{}").status, 204);
  ASSERT_EQ(api.request("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  ASSERT_TRUE(eventually([&] { return read_file(dir.file("serial")).find("spinning") != std::string::npos; }, 30s));

  // vCPU threads name themselves as they start; look until both have.
  int threads = 0, filtered = 0, vcpus = 0, device_threads = 0;
  eventually(
      [&] {
        threads = filtered = vcpus = device_threads = 0;
        for (auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(vmm.pid()) + "/task")) {
          ++threads;
          std::string status = read_file(task.path().string() + "/status");
          if (status.find("Seccomp:\t2") != std::string::npos) ++filtered;
          if (read_file(task.path().string() + "/comm").rfind("vcpu ", 0) == 0) ++vcpus;
          if (read_file(task.path().string() + "/comm").rfind("devices", 0) == 0) ++device_threads;
        }
        return vcpus == 2 && device_threads == 1;
      },
      10s);
  EXPECT_EQ(vcpus, 2);
  EXPECT_EQ(device_threads, 1);
  EXPECT_GE(threads, 4) << "API thread + 2 vCPU threads + the device thread (+ KVM's own kernel worker)";
  EXPECT_EQ(filtered, threads);

  std::string log = read_file(dir.file("vmm.log"));
  EXPECT_NE(log.find("instance started"), std::string::npos) << log;
  EXPECT_NE(log.find("info"), std::string::npos) << log;
  HttpReply again = api.request("PUT", "/logger", json{{"level", "Info"}}.dump());
  EXPECT_EQ(again.status, 400);
}

}  // namespace
}  // namespace kindling::vmm::test
