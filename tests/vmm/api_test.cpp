// The Firecracker-compatible API of a real kindling-vmm process: lifecycle
// (start, pause/resume, Ctrl+Alt+Del, metrics) and refusal of bad input with
// Firecracker-shaped faults, while the VMM stays alive.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "vmm_process.hpp"

namespace kindling::vmm::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vmm_ = std::make_unique<VmmProcess>(std::vector<std::string>{"--api-sock", dir_.file("api.sock"), "--id", "api-test"}, dir_);
    api_ = std::make_unique<ApiClient>(dir_.file("api.sock"));
    ASSERT_TRUE(api_->connected()) << vmm_->stderr_text();
  }

  HttpReply put(const std::string& path, const json& body) { return api_->request("PUT", path, body.dump()); }
  HttpReply configure(const std::string& guest, int vcpus = 1) {
    HttpReply r = put("/boot-source", {{"kernel_image_path", guest_path(guest)}, {"boot_args", "console=ttyS0"}});
    if (r.status != 204) return r;
    r = put("/machine-config", {{"vcpu_count", vcpus}, {"mem_size_mib", 64}});
    if (r.status != 204) return r;
    return put("/serial", {{"serial_out_path", dir_.file("serial.out")}});
  }
  std::string serial() { return read_file(dir_.file("serial.out")); }
  std::string fault_of(const HttpReply& r) {
    auto j = json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("fault_message") ? j["fault_message"].get<std::string>() : "<no fault_message: " + r.body + ">";
  }
  void expect_alive() {
    HttpReply r = api_->request("GET", "/");
    EXPECT_EQ(r.status, 200) << vmm_->stderr_text();
  }

  TempDir dir_;
  std::unique_ptr<VmmProcess> vmm_;
  std::unique_ptr<ApiClient> api_;
};

TEST_F(ApiTest, InstanceInfoBeforeStart) {
  HttpReply r = api_->request("GET", "/");
  ASSERT_EQ(r.status, 200);
  auto j = json::parse(r.body);
  EXPECT_EQ(j["id"], "api-test");
  EXPECT_EQ(j["state"], "Not started");
  EXPECT_EQ(j["app_name"], "kindling-vmm");
}

TEST_F(ApiTest, MachineConfigRoundTripsAndPatches) {
  ASSERT_EQ(put("/machine-config", {{"vcpu_count", 2}, {"mem_size_mib", 256}}).status, 204);
  ASSERT_EQ(api_->request("PATCH", "/machine-config", R"({"mem_size_mib": 128})").status, 204);
  HttpReply r = api_->request("GET", "/machine-config");
  ASSERT_EQ(r.status, 200);
  auto j = json::parse(r.body);
  EXPECT_EQ(j["vcpu_count"], 2);
  EXPECT_EQ(j["mem_size_mib"], 128);
  EXPECT_EQ(j["smt"], false);
  HttpReply c = api_->request("GET", "/vm/config");
  ASSERT_EQ(c.status, 200);
  EXPECT_EQ(json::parse(c.body)["machine-config"]["mem_size_mib"], 128);
}

TEST_F(ApiTest, BootsHelloThroughTheApiAndExitsZero) {
  ASSERT_EQ(configure("hello").status, 204);
  ASSERT_EQ(put("/metrics", {{"metrics_path", dir_.file("metrics.json")}}).status, 204);
  HttpReply r = put("/actions", {{"action_type", "InstanceStart"}});
  EXPECT_EQ(r.status, 204) << r.body;
  auto code = vmm_->wait(30s);
  ASSERT_TRUE(code.has_value()) << "VMM did not exit after the guest reset";
  EXPECT_EQ(*code, 0) << vmm_->stderr_text();
  EXPECT_NE(serial().find("KT END 2 0"), std::string::npos) << serial();
  // Metrics flushed at exit carry the boot milestones and exit counts.
  auto m = json::parse(read_file(dir_.file("metrics.json")));
  EXPECT_TRUE(m["kindling_vmm_api_ready_us"].is_number());
  EXPECT_TRUE(m["kindling_vmm_instance_start_us"].is_number());
  EXPECT_TRUE(m["kindling_vmm_first_serial_byte_us"].is_number());
  EXPECT_GE(m["kindling_vmm_first_serial_byte_us"].get<int64_t>(), m["kindling_vmm_instance_start_us"].get<int64_t>());
  EXPECT_GT(m["kindling_vmm_exits_io_out_total"].get<int>(), 20);
  EXPECT_EQ(m["kindling_vmm_i8042_reset_requests_total"], 1);
}

TEST_F(ApiTest, PauseStopsTheGuestAndResumeContinuesIt) {
  ASSERT_EQ(configure("ticker").status, 204);
  ASSERT_EQ(put("/actions", {{"action_type", "InstanceStart"}}).status, 204);
  ASSERT_TRUE(eventually([&] { return count_lines_with_prefix(serial(), "KT TICK ") >= 2; }, 30s)) << serial();

  HttpReply p = api_->request("PATCH", "/vm", R"({"state": "Paused"})");
  ASSERT_EQ(p.status, 204) << p.body;
  EXPECT_EQ(json::parse(api_->request("GET", "/").body)["state"], "Paused");
  int ticks_at_pause = count_lines_with_prefix(serial(), "KT TICK ");
  // A paused guest must produce nothing; this wait is the observation window.
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(count_lines_with_prefix(serial(), "KT TICK "), ticks_at_pause);

  ASSERT_EQ(api_->request("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  EXPECT_EQ(json::parse(api_->request("GET", "/").body)["state"], "Running");
  EXPECT_TRUE(eventually([&] { return count_lines_with_prefix(serial(), "KT TICK ") >= ticks_at_pause + 2; }, 30s)) << serial();

  // Ctrl+Alt+Del reaches the guest's i8042 poll; the guest then resets.
  ASSERT_EQ(put("/actions", {{"action_type", "SendCtrlAltDel"}}).status, 204);
  auto code = vmm_->wait(30s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_NE(serial().find("KT PASS ctrl_alt_del_received"), std::string::npos) << serial();
}

TEST_F(ApiTest, RunawayGuestLeavesVmmResponsiveAndStoppable) {
  ASSERT_EQ(configure("spin").status, 204);
  ASSERT_EQ(put("/actions", {{"action_type", "InstanceStart"}}).status, 204);
  ASSERT_TRUE(eventually([&] { return serial().find("spinning forever") != std::string::npos; }, 30s)) << serial();
  auto t0 = std::chrono::steady_clock::now();
  expect_alive();
  EXPECT_EQ(api_->request("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  EXPECT_EQ(api_->request("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  vmm_->signal(SIGTERM);
  auto code = vmm_->wait(10s);
  ASSERT_TRUE(code.has_value()) << "a spinning guest kept the VMM from stopping";
  EXPECT_EQ(*code, 0);
}

TEST_F(ApiTest, FlushMetricsWritesALine) {
  ASSERT_EQ(put("/metrics", {{"metrics_path", dir_.file("m.json")}}).status, 204);
  ASSERT_EQ(put("/actions", {{"action_type", "FlushMetrics"}}).status, 204);
  auto line = json::parse(read_file(dir_.file("m.json")));
  EXPECT_GE(line["kindling_vmm_api_requests_total"].get<int>(), 2);
  HttpReply again = put("/metrics", {{"metrics_path", dir_.file("m2.json")}});
  EXPECT_EQ(again.status, 400);
}

// ---- bad input: every refusal is a 400 with a fault_message, and the VMM lives on ----

TEST_F(ApiTest, MissingKernelIsRefusedAtPut) {
  HttpReply r = put("/boot-source", {{"kernel_image_path", dir_.file("no-such-kernel")}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(fault_of(r).find("The kernel file cannot be opened"), std::string::npos) << r.body;
  expect_alive();
}

TEST_F(ApiTest, CorruptAndTruncatedKernelsAreRefusedAtStart) {
  write_file(dir_.file("garbage"), std::string(4096, '\x5a'));
  std::string elf = read_file(guest_path("hello"));
  write_file(dir_.file("truncated.elf"), elf.substr(0, 200));
  std::string bad_note = elf;
  for (size_t at = bad_note.find(std::string("Xen\0", 4)); at != std::string::npos; at = std::string::npos) bad_note[at] = 'Q';
  write_file(dir_.file("no-pvh.elf"), bad_note);
  for (const char* name : {"garbage", "truncated.elf", "no-pvh.elf"}) {
    ASSERT_EQ(put("/boot-source", {{"kernel_image_path", dir_.file(name)}}).status, 204);
    HttpReply r = put("/actions", {{"action_type", "InstanceStart"}});
    EXPECT_EQ(r.status, 400) << name;
    EXPECT_NE(fault_of(r).find("Cannot load kernel"), std::string::npos) << name << ": " << r.body;
    expect_alive();
  }
  EXPECT_EQ(json::parse(api_->request("GET", "/").body)["state"], "Not started");
}

TEST_F(ApiTest, CommandLineTooLongIsRefused) {
  HttpReply r = put("/boot-source", {{"kernel_image_path", guest_path("hello")}, {"boot_args", std::string(5000, 'a')}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(fault_of(r).find("command line is invalid"), std::string::npos) << r.body;
}

TEST_F(ApiTest, ZeroOrAbsurdVcpuAndMemoryAreRefused) {
  for (json body : {json{{"vcpu_count", 0}, {"mem_size_mib", 128}}, json{{"vcpu_count", 33}, {"mem_size_mib", 128}},
                    json{{"vcpu_count", -1}, {"mem_size_mib", 128}}}) {
    HttpReply r = put("/machine-config", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(fault_of(r).find("vCPU number is invalid"), std::string::npos) << r.body;
  }
  for (json body : {json{{"vcpu_count", 1}, {"mem_size_mib", 0}}, json{{"vcpu_count", 1}, {"mem_size_mib", 1ll << 40}}}) {
    HttpReply r = put("/machine-config", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(fault_of(r).find("memory size (MiB) is invalid"), std::string::npos) << r.body;
  }
  HttpReply t = put("/machine-config", {{"vcpu_count", "two"}, {"mem_size_mib", 128}});
  EXPECT_EQ(t.status, 400);
  expect_alive();
}

TEST_F(ApiTest, InstanceStartTwiceIsRefused) {
  ASSERT_EQ(configure("spin").status, 204);
  ASSERT_EQ(put("/actions", {{"action_type", "InstanceStart"}}).status, 204);
  HttpReply r = put("/actions", {{"action_type", "InstanceStart"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(fault_of(r), "The requested operation is not supported after starting the microVM.");
  HttpReply late = put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 32}});
  EXPECT_EQ(late.status, 400);
}

TEST_F(ApiTest, StartWithoutKernelAndPauseBeforeStartAreRefused) {
  HttpReply r = put("/actions", {{"action_type", "InstanceStart"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(fault_of(r), "Cannot start microvm without kernel configuration.");
  HttpReply p = api_->request("PATCH", "/vm", R"({"state": "Paused"})");
  EXPECT_EQ(p.status, 400);
  EXPECT_EQ(fault_of(p), "The requested operation is not supported before starting the microVM.");
}

TEST_F(ApiTest, MalformedJsonUnknownFieldsAndRoutesAreRefused) {
  HttpReply a = api_->request("PUT", "/machine-config", "{\"vcpu_count\": 1,");
  EXPECT_EQ(a.status, 400);
  EXPECT_NE(fault_of(a).find("An error occurred when deserializing the json body of a request"), std::string::npos);
  HttpReply b = put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 64}, {"turbo", true}});
  EXPECT_EQ(b.status, 400);
  EXPECT_NE(fault_of(b).find("unknown field `turbo`"), std::string::npos) << b.body;
  HttpReply c = put("/actions", {{"action_type", "Explode"}});
  EXPECT_EQ(c.status, 400);
  HttpReply d = api_->request("GET", "/no/such/route");
  EXPECT_EQ(d.status, 400);
  EXPECT_EQ(fault_of(d), "Invalid request method and/or path: GET /no/such/route.");
  HttpReply e = api_->request("PUT", "/boot-source", "");
  EXPECT_EQ(e.status, 400);
  expect_alive();
}

TEST_F(ApiTest, GarbageAndOversizedHttpAreRefusedAndTheServerSurvives) {
  {
    ApiClient raw(dir_.file("api.sock"));
    std::string reply = raw.raw("THIS IS NOT HTTP\r\n\r\n");
    EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  }
  {
    ApiClient raw(dir_.file("api.sock"));
    std::string reply = raw.raw("PUT /boot-source HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n");
    EXPECT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply;
  }
  {
    // Invalid UTF-8 in the path must not break the JSON fault reply.
    ApiClient raw(dir_.file("api.sock"));
    std::string reply = raw.raw("GET /\xff\xfe HTTP/1.1\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
    EXPECT_NE(reply.find("fault_message"), std::string::npos) << reply;
  }
  {
    ApiClient raw(dir_.file("api.sock"));
    std::string reply = raw.raw("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    EXPECT_EQ(reply.rfind("HTTP/1.1 501", 0), 0u) << reply;
  }
  expect_alive();
}

// ---- command line and config file ----

TEST(VmmCommandLine, NoApiWithoutConfigFileIsAnArgumentError) {
  TempDir dir;
  VmmProcess vmm({"--no-api"}, dir);
  EXPECT_EQ(vmm.wait(10s).value_or(-1), 153);
}

TEST(VmmCommandLine, BadConfigFileIsAConfigurationError) {
  TempDir dir;
  write_file(dir.file("bad.json"), "{\"boot-source\": {\"kernel_image_path\": 7}");
  VmmProcess vmm({"--config-file", dir.file("bad.json"), "--no-api"}, dir);
  EXPECT_EQ(vmm.wait(10s).value_or(-1), 152);
  EXPECT_NE(vmm.stderr_text().find("bad configuration"), std::string::npos) << vmm.stderr_text();
}

TEST(VmmCommandLine, ConfigFileWithBadMachineConfigIsRefused) {
  TempDir dir;
  write_file(dir.file("vm.json"), json{{"boot-source", {{"kernel_image_path", guest_path("hello")}}},
                                       {"machine-config", {{"vcpu_count", 64}, {"mem_size_mib", 64}}}}.dump());
  VmmProcess vmm({"--config-file", dir.file("vm.json"), "--no-api"}, dir);
  EXPECT_EQ(vmm.wait(10s).value_or(-1), 152);
  EXPECT_NE(vmm.stderr_text().find("vCPU number is invalid"), std::string::npos) << vmm.stderr_text();
}

}  // namespace
}  // namespace kindling::vmm::test
