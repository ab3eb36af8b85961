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

TEST(VmmConfig, SnapshotCreateIsFullOnlyWithTwoDistinctPaths) {
  auto ok = parse_snapshot_create(json{{"snapshot_type", "Full"}, {"snapshot_path", "a"}, {"mem_file_path", "b"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->snapshot_path, "a");
  EXPECT_EQ(ok->mem_file_path, "b");
  EXPECT_TRUE(parse_snapshot_create(json{{"snapshot_path", "a"}, {"mem_file_path", "b"}}));  // Full by default
  EXPECT_FALSE(parse_snapshot_create(json{{"snapshot_type", "Diff"}, {"snapshot_path", "a"}, {"mem_file_path", "b"}}));
  EXPECT_FALSE(parse_snapshot_create(json{{"snapshot_path", "a"}, {"mem_file_path", "a"}}));
  EXPECT_FALSE(parse_snapshot_create(json{{"snapshot_path", "a"}}));
  EXPECT_FALSE(parse_snapshot_create(json{{"snapshot_path", "a"}, {"mem_file_path", "b"}, {"version", "1.0"}}));
}

TEST(VmmConfig, SnapshotLoadParsesBackendsAndValidatesOverrides) {
  auto ok = parse_snapshot_load(json::parse(R"({"snapshot_path": "s", "resume_vm": true,
      "mem_backend": {"backend_type": "Uffd", "backend_path": "m", "hot_pages_path": "h", "record_hot_pages": true},
      "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap1"}], "vsock_override": {"uds_path": "/v.sock"}})"));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->backend, SnapshotLoadConfig::Backend::kUffd);
  EXPECT_EQ(ok->backend_path, "m");
  EXPECT_EQ(ok->hot_pages_path, "h");
  EXPECT_TRUE(ok->record_hot_pages);
  EXPECT_TRUE(ok->resume_vm);
  ASSERT_EQ(ok->network_overrides.size(), 1u);
  EXPECT_EQ(ok->network_overrides[0].second, "tap1");
  EXPECT_EQ(ok->vsock_uds_path, "/v.sock");
  auto file = parse_snapshot_load(json::parse(R"({"snapshot_path": "s", "mem_backend": {"backend_type": "File", "backend_path": "m"}})"));
  ASSERT_TRUE(file);
  EXPECT_EQ(file->backend, SnapshotLoadConfig::Backend::kFile);
  EXPECT_FALSE(file->resume_vm);
  for (const char* bad : {
           R"({"snapshot_path": "s", "mem_file_path": "m"})",
           R"({"snapshot_path": "s", "mem_backend": {"backend_type": "Disk", "backend_path": "m"}})",
           R"({"snapshot_path": "s", "mem_backend": {"backend_type": "File"}})",
           R"({"snapshot_path": "s", "mem_backend": {"backend_type": "File", "backend_path": "m", "hot_pages_path": "h"}})",
           R"({"snapshot_path": "s", "mem_backend": {"backend_type": "File", "backend_path": "m"}, "enable_diff_snapshots": true})",
           R"({"snapshot_path": "s", "mem_backend": {"backend_type": "File", "backend_path": "m"}, "network_overrides": {}})",
           R"({"snapshot_path": "s", "mem_backend": {"backend_type": "File", "backend_path": "m"}, "network_overrides": [{"iface_id": "e"}]})",
           R"({"snapshot_path": "s", "mem_backend": {"backend_type": "File", "backend_path": "m"}, "vsock_override": {"uds_path": ""}})",
           R"({"snapshot_path": "", "mem_backend": {"backend_type": "File", "backend_path": "m"}})",
       }) {
    EXPECT_FALSE(parse_snapshot_load(json::parse(bad))) << bad;
  }
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
