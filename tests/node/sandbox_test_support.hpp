// Shared by the sandbox tests: a backend confined to this test process (its
// own state dir, cgroup parent and uid range, so concurrent runs never touch
// each other's machines) and a client for the probe's one-line commands.
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "node/sandbox/sandbox_backend.hpp"

namespace kindling::node::testing {

inline SandboxConfig test_config(const std::string& agent_path) {
  SandboxConfig config;
  config.agent_path = agent_path;
  const auto pid = static_cast<unsigned>(::getpid());
  // A private (0700) directory on the way, as a data dir from mkdtemp is:
  // the machines' uids must not need to traverse it.
  std::string top = "/tmp/kn-test-" + std::to_string(pid);
  std::filesystem::create_directories(top);
  std::filesystem::permissions(top, std::filesystem::perms::owner_all);
  config.state_dir = top + "/machines";
  config.cgroup_parent = "kindling-test-" + std::to_string(pid);
  config.uid_base = 100000000u + (pid % 4096u) * 8u * kIdsPerMachine;
  config.uid_slots = 8;
  return config;
}

inline MachineSpec small_spec(const std::string& id) {
  MachineSpec spec;
  spec.id = id;
  spec.memory_limit_bytes = 256ull << 20;
  spec.pids_limit = 64;
  spec.cpu_limit = 0.5;
  spec.scratch_bytes = 64ull << 20;
  return spec;
}

// Connects to the machine's listener, retrying while it is not up yet.
inline Result<UniqueFd> connect_when_ready(Machine& machine, std::chrono::seconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto fd = machine.connect_agent();
    if (fd || std::chrono::steady_clock::now() > deadline) return fd;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Sends one probe command and returns its JSON answer.
inline nlohmann::json ask(Machine& machine, const std::string& command) {
  auto fd = connect_when_ready(machine);
  if (!fd) {
    ADD_FAILURE() << fd.error().message;
    return nullptr;
  }
  std::string line = command + "\n";
  if (::send(fd->get(), line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    ADD_FAILURE() << "send to probe failed";
    return nullptr;
  }
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd->get(), buf, sizeof buf)) > 0) reply.append(buf, static_cast<std::size_t>(n));
  auto parsed = nlohmann::json::parse(reply, nullptr, false);
  if (parsed.is_discarded()) ADD_FAILURE() << "probe answered non-JSON: " << reply;
  return parsed;
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto backend = SandboxBackend::create(test_config(KINDLING_PROBE_PATH));
    ASSERT_TRUE(backend) << backend.error().message;
    backend_ = std::move(backend).value();
  }
  void TearDown() override {
    auto state_root = std::filesystem::path(backend_->config().state_dir).parent_path();
    backend_.reset();  // removes its (now empty) parent cgroups
    std::error_code ec;
    std::filesystem::remove_all(state_root, ec);
  }

  std::unique_ptr<SandboxMachine> start(const std::string& id) {
    return start(small_spec(id));
  }
  std::unique_ptr<SandboxMachine> start(const MachineSpec& spec) {
    auto machine = backend_->start(spec);
    EXPECT_TRUE(machine) << machine.error().message;
    if (!machine) return nullptr;
    return std::unique_ptr<SandboxMachine>(static_cast<SandboxMachine*>(std::move(machine).value().release()));
  }

  std::unique_ptr<SandboxBackend> backend_;
};

}  // namespace kindling::node::testing
