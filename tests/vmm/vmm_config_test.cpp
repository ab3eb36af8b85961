#include "vmm/vmm_config.hpp"

#include <gtest/gtest.h>

namespace kindling::vmm {
namespace {

using nlohmann::json;

TEST(VmmConfig, MachineConfigPutNeedsBothFieldsAndValidatesRanges) {
  EXPECT_FALSE(parse_machine_config(json{{"vcpu_count", 1}}, nullptr));
  auto ok = parse_machine_config(json{{"vcpu_count", 32}, {"mem_size_mib", 1}}, nullptr);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->vcpu_count, 32u);
  EXPECT_FALSE(parse_machine_config(json{{"vcpu_count", 33}, {"mem_size_mib", 1}}, nullptr));
  EXPECT_FALSE(parse_machine_config(json{{"vcpu_count", 1}, {"mem_size_mib", 1.5}}, nullptr));
  EXPECT_FALSE(parse_machine_config(json{{"vcpu_count", 1}, {"mem_size_mib", 64}, {"smt", true}}, nullptr));
  EXPECT_FALSE(parse_machine_config(json{{"vcpu_count", 1}, {"mem_size_mib", 64}, {"cpu_template", "T2"}}, nullptr));
  EXPECT_FALSE(parse_machine_config(json{{"vcpu_count", 1}, {"mem_size_mib", 65}, {"huge_pages", "2M"}}, nullptr));
  EXPECT_FALSE(parse_machine_config(json::array(), nullptr));
}

TEST(VmmConfig, MachineConfigPatchKeepsOtherFields) {
  MachineConfig base;
  base.vcpu_count = 4;
  base.mem_size_mib = 512;
  auto p = parse_machine_config(json{{"mem_size_mib", 256}}, &base);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->vcpu_count, 4u);
  EXPECT_EQ(p->mem_size_mib, 256u);
}

TEST(VmmConfig, BootSourceRequiresKernelAndBoundsCmdline) {
  EXPECT_FALSE(parse_boot_source(json{{"boot_args", "x"}}));
  EXPECT_FALSE(parse_boot_source(json{{"kernel_image_path", "/k"}, {"boot_args", std::string(2048, 'x')}}));
  EXPECT_TRUE(parse_boot_source(json{{"kernel_image_path", "/k"}, {"boot_args", std::string(2047, 'x')}}));
  auto e = parse_boot_source(json{{"kernel_image_path", "/k"}, {"extra", 1}});
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("unknown field `extra`"), std::string::npos);
}

TEST(VmmConfig, ActionsAndVmState) {
  EXPECT_EQ(*parse_action(json{{"action_type", "InstanceStart"}}), ActionType::kInstanceStart);
  EXPECT_EQ(*parse_action(json{{"action_type", "SendCtrlAltDel"}}), ActionType::kSendCtrlAltDel);
  EXPECT_EQ(*parse_action(json{{"action_type", "FlushMetrics"}}), ActionType::kFlushMetrics);
  EXPECT_FALSE(parse_action(json{{"action_type", "Reboot"}}));
  EXPECT_EQ(*parse_vm_state(json{{"state", "Paused"}}), VmStateRequest::kPaused);
  EXPECT_FALSE(parse_vm_state(json{{"state", "paused"}}));
}

TEST(VmmConfig, ConfigFileLayout) {
  auto r = parse_config_file(R"({"boot-source": {"kernel_image_path": "/k", "boot_args": "console=ttyS0"},
      "machine-config": {"vcpu_count": 2, "mem_size_mib": 256},
      "cpu-config": {"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0,
          "modifiers": [{"register": "ecx", "bitmap": "0bxxx0xxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]}]},
      "drives": []})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->machine.vcpu_count, 2u);
  ASSERT_TRUE(r->cpu_template);
  EXPECT_EQ(r->cpu_template->cpuid.size(), 1u);
  EXPECT_FALSE(parse_config_file(R"({"machine-config": {"vcpu_count": 1, "mem_size_mib": 64}})"));
  EXPECT_FALSE(parse_config_file(R"({"boot-source": {"kernel_image_path": "/k"}, "drives": [{"drive_id": "root"}]})"));
  EXPECT_FALSE(parse_config_file("not json"));
}

TEST(VmmConfig, VmConfigJsonHasFirecrackerSections) {
  VmResources r;
  r.boot_source = BootSourceConfig{"/k", "a=b", std::nullopt};
  json j = to_json(r);
  EXPECT_EQ(j["boot-source"]["kernel_image_path"], "/k");
  EXPECT_EQ(j["machine-config"]["vcpu_count"], 1);
  EXPECT_TRUE(j["drives"].is_array());
}

TEST(VmmConfig, NetworkInterfaceTakesRateLimitersLikeFirecracker) {
  json j = json::parse(R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:0a:00:00:02",
                            "rx_rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100}},
                            "tx_rate_limiter": {"ops": {"size": 10, "refill_time": 100}}})");
  auto n = parse_network_interface(j, "eth0");
  ASSERT_TRUE(n) << n.error().message;
  ASSERT_TRUE(n->rx_rate_limiter && n->rx_rate_limiter->bandwidth);
  EXPECT_EQ(n->rx_rate_limiter->bandwidth->size, 1000u);
  ASSERT_TRUE(n->tx_rate_limiter && n->tx_rate_limiter->ops);
  EXPECT_FALSE(n->tx_rate_limiter->bandwidth);
  j["tx_rate_limiter"]["ops"]["size"] = 0;
  EXPECT_FALSE(parse_network_interface(j, "eth0"));
  j.erase("tx_rate_limiter");
  j["rx_rate_limiter"] = nullptr;
  auto plain = parse_network_interface(j, "eth0");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->rx_rate_limiter);
}

}  // namespace
}  // namespace kindling::vmm
