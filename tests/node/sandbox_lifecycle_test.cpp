// Nothing a machine held survives it: processes, cgroups, directories, uid
// ranges, mounts; and machines a dead owner left behind are reclaimed.
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "sandbox_test_support.hpp"

namespace kindling::node::testing {
namespace {

// Host processes whose uid lies in the backend's range.
int processes_in_range(const SandboxConfig& config) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("Uid:", 0) != 0) continue;
      unsigned long uid = std::stoul(line.substr(4));
      if (uid >= config.uid_base && uid < config.uid_base + std::uint64_t{config.uid_slots} * kIdsPerMachine) ++count;
    }
  }
  return count;
}

std::size_t entries(const std::string& dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

std::size_t cgroup_dirs_safe(const SandboxConfig& config) {
  std::size_t n = 0;
  for (const char* h : {"", "/memory", "/pids", "/cpu", "/freezer", "/unified"}) {
    std::string dir = config.cgroup_root + h + "/" + config.cgroup_parent;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec)) {
      if (it->is_directory()) ++n;
    }
  }
  return n;
}

std::size_t host_mounts() {
  std::ifstream in("/proc/self/mounts");
  std::size_t n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

TEST_F(SandboxTest, FiftyCyclesLeaveNothingBehind) {
  const auto& config = backend_->config();
  const int procs_before = processes_in_range(config);
  const std::size_t mounts_before = host_mounts();
  EXPECT_EQ(procs_before, 0);
  for (int i = 0; i < 50; ++i) {
    auto m = start("cycle-" + std::to_string(i % 3));
    ASSERT_TRUE(m) << "cycle " << i;
    // Every other machine gets as far as answering, with a child of its own.
    if (i % 2 == 0) {
      ASSERT_TRUE(ask(*m, "spawn").contains("pid")) << "cycle " << i;
    }
    m->kill();
    auto exit = m->reap();
    EXPECT_EQ(exit.signal, SIGKILL) << "cycle " << i;
  }
  EXPECT_EQ(processes_in_range(config), procs_before);
  EXPECT_EQ(cgroup_dirs_safe(config), 0u);
  EXPECT_EQ(entries(config.state_dir), 1u);  // only the shared, empty .mnt
  EXPECT_EQ(entries(config.state_dir + "/.mnt"), 0u);
  EXPECT_EQ(host_mounts(), mounts_before);
}

TEST_F(SandboxTest, UidRangesAreReusedAfterReap) {
  std::set<uid_t> seen;
  for (int i = 0; i < 12; ++i) {  // more starts than the 8 slots
    auto m = start("slot");
    ASSERT_TRUE(m);
    seen.insert(m->host_uid());
    m->kill();
    m->reap();
  }
  EXPECT_EQ(seen.size(), 1u);
  std::vector<std::unique_ptr<SandboxMachine>> all;
  for (int i = 0; i < 8; ++i) all.push_back(start("full-" + std::to_string(i)));
  auto ninth = backend_->start(small_spec("full-8"));
  ASSERT_FALSE(ninth);
  EXPECT_EQ(ninth.error().code, "exhausted");
}

TEST_F(SandboxTest, ReclaimOrphansKillsAForgottenMachine) {
  // Orphans get reparented to us, as they would be to init on a real host.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    // A node process that starts a machine and dies without cleaning up.
    auto backend = SandboxBackend::create(backend_->config());
    if (!backend) ::_exit(2);
    auto m = (*backend)->start(small_spec("forgotten"));
    if (!m) ::_exit(3);
    pid_t pid = (*m)->pid();
    (void)!::write(report[1], &pid, sizeof pid);
    ::_exit(0);  // no destructors: the machine is left running
  }
  ::close(report[1]);
  pid_t orphan = 0;
  ASSERT_EQ(::read(report[0], &orphan, sizeof orphan), static_cast<ssize_t>(sizeof orphan));
  ::close(report[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(owner, &status, 0), owner);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(::kill(orphan, 0), 0) << "the orphan should still be running";
  EXPECT_TRUE(std::filesystem::exists(backend_->config().state_dir + "/forgotten"));

  auto live = start("still-owned");  // must survive the reclaim
  ASSERT_TRUE(live);
  auto reclaimed = backend_->reclaim_orphans();
  ASSERT_TRUE(reclaimed) << reclaimed.error().message;
  EXPECT_EQ(*reclaimed, 1);
  ASSERT_EQ(::waitpid(orphan, &status, 0), orphan);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_FALSE(std::filesystem::exists(backend_->config().state_dir + "/forgotten"));
  EXPECT_EQ(cgroup_dirs_safe(backend_->config()) > 0, true);  // still-owned's
  EXPECT_EQ(ask(*live, "facts")["pid"], 1);
  live->kill();
  live->reap();
  EXPECT_EQ(cgroup_dirs_safe(backend_->config()), 0u);
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

}  // namespace
}  // namespace kindling::node::testing
