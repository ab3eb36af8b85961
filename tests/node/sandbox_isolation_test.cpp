// The namespace sandbox with the probe as PID 1: what a machine can see and
// do, asserted from inside (the probe's answers) and outside (/proc, cgroups).
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <fstream>
#include <set>
#include <sstream>

#include "sandbox_test_support.hpp"

namespace kindling::node::testing {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ns_of(const std::string& pid, const char* ns) {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/" + pid + "/ns/" + ns, ec).string();
}

// True when nobody connected to `listener`.
bool ask_nothing_pending(int listener) {
  pollfd pfd{listener, POLLIN, 0};
  return ::poll(&pfd, 1, 100) == 0;
}

TEST_F(SandboxTest, NamespacesDifferFromHost) {
  auto m = start("ns");
  ASSERT_TRUE(m);
  ask(*m, "facts");  // past execve, in every namespace
  for (const char* ns : {"user", "pid", "mnt", "net", "ipc", "uts", "cgroup"}) {
    std::string inside = ns_of(std::to_string(m->pid()), ns);
    EXPECT_FALSE(inside.empty()) << ns;
    EXPECT_NE(inside, ns_of("self", ns)) << ns;
  }
}

TEST_F(SandboxTest, IdentityInsideIsRootPid1Kindling) {
  auto m = start("ident");
  ASSERT_TRUE(m);
  auto facts = ask(*m, "facts");
  EXPECT_EQ(facts["pid"], 1);
  EXPECT_EQ(facts["uid"], 0);
  EXPECT_EQ(facts["gid"], 0);
  EXPECT_EQ(facts["hostname"], "kindling");
  // Outside, uid 0 of the machine is the first uid of its host range.
  std::string status = read_file("/proc/" + std::to_string(m->pid()) + "/status");
  std::istringstream lines(status);
  std::string line;
  unsigned host_uid = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("Uid:", 0) == 0) host_uid = static_cast<unsigned>(std::stoul(line.substr(4)));
  }
  EXPECT_EQ(host_uid, m->host_uid());
  EXPECT_GE(host_uid, backend_->config().uid_base);
  std::istringstream map(read_file("/proc/" + std::to_string(m->pid()) + "/uid_map"));
  unsigned inside = 1, outside = 0, count = 0;
  map >> inside >> outside >> count;
  EXPECT_EQ(inside, 0u);
  EXPECT_EQ(outside, m->host_uid());
  EXPECT_EQ(count, kIdsPerMachine);
  // Only the machine's own processes are visible, with no host /proc entries.
  EXPECT_EQ(facts["procs"], nlohmann::json::array({"1"}));
}

TEST_F(SandboxTest, RootIsReadOnlyScratchIsWritable) {
  auto m = start("fs");
  ASSERT_TRUE(m);
  for (const char* path : {"/usr/kindling-probe", "/etc/kindling-probe", "/kindling-probe", "/kindling/agent",
                           "/proc/kindling-probe", "/dev/kindling-probe"}) {
    auto r = ask(*m, std::string("write ") + path);
    EXPECT_EQ(r["ok"], false) << path;
  }
  EXPECT_EQ(ask(*m, "write /usr/kindling-probe")["errno"], EROFS);
  for (const char* path : {"/tmp/x", "/dev/shm/x", "/home/browser/x", "/run/kindling/x"}) {
    EXPECT_EQ(ask(*m, std::string("write ") + path)["ok"], true) << path;
  }
  // /run/kindling is the host's run directory, and nothing else of the host.
  EXPECT_EQ(read_file(m->run_dir() + "/x"), "probe");
  EXPECT_EQ(ask(*m, "read /etc/shadow")["ok"], false);
  EXPECT_EQ(ask(*m, "read /dev/null")["ok"], true);
  auto facts = ask(*m, "facts");
  std::set<std::string> root;
  for (auto& e : facts["root_entries"]) root.insert(e.get<std::string>());
  EXPECT_EQ(root, (std::set<std::string>{"bin", "dev", "etc", "home", "kindling", "lib", "lib64", "proc", "root",
                                         "run", "sbin", "tmp", "usr"}));
  std::string mounts = facts["mounts"];
  EXPECT_NE(mounts.find("tmpfs / tmpfs ro"), std::string::npos) << mounts;
  EXPECT_NE(mounts.find(" /usr "), std::string::npos);
}

TEST_F(SandboxTest, CgroupLimitsAreSetAndHidden) {
  MachineSpec spec = small_spec("cg");
  spec.memory_limit_bytes = 300ull << 20;
  spec.pids_limit = 77;
  spec.cpu_limit = 0.25;
  auto m = start(spec);
  ASSERT_TRUE(m);
  ask(*m, "facts");
  std::string memory = m->cgroup_file("memory.max");
  if (memory.empty()) memory = m->cgroup_file("memory.limit_in_bytes");
  ASSERT_FALSE(memory.empty());
  EXPECT_EQ(std::stoull(read_file(memory)), spec.memory_limit_bytes);
  EXPECT_EQ(read_file(m->cgroup_file("pids.max")), "77\n");
  std::string cpu_max = m->cgroup_file("cpu.max");
  if (!cpu_max.empty()) {
    EXPECT_EQ(read_file(cpu_max), "25000 100000\n");
  } else {
    EXPECT_EQ(read_file(m->cgroup_file("cpu.cfs_quota_us")), "25000\n");
    EXPECT_EQ(read_file(m->cgroup_file("cpu.cfs_period_us")), "100000\n");
  }
  EXPECT_NE(read_file(m->cgroup_file("cgroup.procs")).find(std::to_string(m->pid())), std::string::npos);
  // The cgroup namespace hides where the machine sits on the host.
  std::string inside = ask(*m, "facts")["cgroup"];
  EXPECT_EQ(inside.find("kindling-test"), std::string::npos) << inside;
}

TEST_F(SandboxTest, BackgroundMachinesGetTheLowestCpuWeight) {
  MachineSpec spec = small_spec("bg");
  spec.background = true;
  auto m = start(spec);
  ASSERT_TRUE(m);
  ask(*m, "facts");
  std::string weight = m->cgroup_file("cpu.weight");
  bool v2 = !weight.empty();
  if (!v2) weight = m->cgroup_file("cpu.shares");
  ASSERT_FALSE(weight.empty());
  EXPECT_EQ(read_file(weight), v2 ? "1\n" : "2\n");
  ASSERT_TRUE(m->set_background(false).ok());
  EXPECT_EQ(read_file(weight), v2 ? "100\n" : "1024\n");
}

TEST_F(SandboxTest, NetworkIsLoopbackOnly) {
  auto m = start("net");
  ASSERT_TRUE(m);
  auto facts = ask(*m, "facts");
  EXPECT_EQ(facts["interfaces"], nlohmann::json::array({"lo"}));
  EXPECT_EQ(facts["lo_up"], true);
}

TEST_F(SandboxTest, SeccompDeniesWhatABrowserNeverNeeds) {
  auto m = start("seccomp");
  ASSERT_TRUE(m);
  auto facts = ask(*m, "facts");
  EXPECT_EQ(facts["seccomp"], "2");
  EXPECT_EQ(facts["no_new_privs"], "1");
  // Each of these would succeed (or fail otherwise) without the filter: the
  // probe is root with full capabilities in its user namespace.
  for (const char* call : {"mount", "umount", "ptrace", "bpf", "keyctl", "perf_event_open"}) {
    auto r = ask(*m, std::string("try ") + call);
    EXPECT_EQ(r["rc"], -1) << call;
    EXPECT_EQ(r["errno"], EPERM) << call;
  }
  // What Chromium's own sandbox needs still works.
  EXPECT_EQ(ask(*m, "try unshare_user")["rc"], 0);
  EXPECT_EQ(ask(*m, "try chroot")["rc"], 0);
}

TEST_F(SandboxTest, TwoMachinesCannotSeeEachOther) {
  auto a = start("iso-a");
  auto b = start("iso-b");
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->host_uid(), b->host_uid());
  auto spawned = ask(*a, "spawn");
  ASSERT_TRUE(spawned.contains("pid"));
  ASSERT_EQ(ask(*a, "write /tmp/secret-a")["ok"], true);
  ASSERT_EQ(ask(*a, "write /home/browser/secret-a")["ok"], true);
  auto facts_a = ask(*a, "facts");
  auto facts_b = ask(*b, "facts");
  EXPECT_EQ(facts_a["procs"].size(), 2u);
  EXPECT_EQ(facts_b["procs"], nlohmann::json::array({"1"}));
  EXPECT_EQ(ask(*b, "read /tmp/secret-a")["errno"], ENOENT);
  EXPECT_EQ(ask(*b, "read /home/browser/secret-a")["errno"], ENOENT);
  EXPECT_EQ(ask(*b, "read /run/kindling/agent.log")["ok"], false);
  for (const char* ns : {"user", "pid", "mnt", "net", "ipc", "uts"}) {
    EXPECT_NE(ns_of(std::to_string(a->pid()), ns), ns_of(std::to_string(b->pid()), ns)) << ns;
  }
}

TEST_F(SandboxTest, HostNeverFollowsLinksTheMachinePlants) {
  auto m = start("links");
  ASSERT_TRUE(m);
  ask(*m, "facts");
  // A host socket the machine would like the node to connect to for it.
  std::string host_socket = std::filesystem::path(backend_->config().state_dir).parent_path() / "host.sock";
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, host_socket.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  // The probe answers this one command and then has no socket any more.
  ASSERT_EQ(ask(*m, "symlink " + host_socket + " /run/kindling/agent.sock")["ok"], true);
  auto fd = m->connect_agent();
  EXPECT_FALSE(fd);
  ASSERT_EQ(ask_nothing_pending(listener.get()), true);
}

// Bytes in regular files under `dir`, links not followed.
std::uintmax_t directory_bytes(const std::string& dir) {
  std::uintmax_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += it->file_size(ec);
  }
  return total;
}

TEST_F(SandboxTest, MachineOutputIsKeptOnlyAsABoundedTail) {
  auto m = start("spew");
  ASSERT_TRUE(m);
  auto before = directory_bytes(backend_->config().state_dir);
  ASSERT_EQ(ask(*m, "spew 32")["ok"], true);
  // The drain runs on its own thread: wait for the marker to arrive.
  for (int i = 0; i < 200 && m->agent_log_tail().find("spew done") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string tail = m->agent_log_tail(1 << 30);
  EXPECT_NE(tail.find("probe: spew done"), std::string::npos);
  EXPECT_LE(tail.size(), 64u * 1024);
  EXPECT_GE(m->agent_output_bytes(), 32u << 20);
  // Nothing of it reached the host's disk.
  EXPECT_LT(directory_bytes(backend_->config().state_dir), before + (1u << 20));
}

TEST_F(SandboxTest, ExitIsReportedThroughExitFd) {
  auto m = start("exit");
  ASSERT_TRUE(m);
  ask(*m, "spawn");
  {
    auto fd = connect_when_ready(*m);
    ASSERT_TRUE(fd);
    ASSERT_EQ(::send(fd->get(), "exit 7\n", 7, MSG_NOSIGNAL), 7);
  }
  pollfd pfd{m->exit_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 20000), 1);
  auto exit = m->reap();
  EXPECT_EQ(exit.exit_code, 7);
  EXPECT_EQ(exit.describe(), "exited with code 7");
  EXPECT_FALSE(std::filesystem::exists(m->run_dir()));

  auto k = start("killed");
  ASSERT_TRUE(k);
  ask(*k, "facts");
  k->kill();
  k->kill();  // idempotent
  auto killed = k->reap();
  EXPECT_EQ(killed.signal, SIGKILL);
  EXPECT_EQ(killed.describe(), "killed by signal SIGKILL");
  EXPECT_EQ(k->reap().signal, SIGKILL);  // idempotent
}

// A session's extensions: host folders below a private (0700) directory,
// shown read-only and no-exec at /kindling/extensions/<name>, in that
// machine only.
TEST_F(SandboxTest, ExtensionsAreBoundReadOnlyIntoTheirMachineOnly) {
  auto top = std::filesystem::path(backend_->config().state_dir).parent_path() / "extensions" / "e1" / "files";
  std::filesystem::create_directories(top / "js");
  {
    std::ofstream(top / "manifest.json") << "{\"manifest_version\": 3}";
  }
  std::filesystem::permissions(top / "manifest.json", std::filesystem::perms(0644));
  std::filesystem::permissions(top.parent_path().parent_path(), std::filesystem::perms::owner_all);
  auto spec = small_spec("ext");
  spec.extensions = {{.name = "e1", .host_dir = top.string()}};
  auto m = start(spec);
  ASSERT_TRUE(m);
  auto read = ask(*m, "read /kindling/extensions/e1/manifest.json");
  EXPECT_EQ(read["ok"], true) << read.dump();
  EXPECT_EQ(read["content"], "{\"manifest_version\": 3}");
  auto write = ask(*m, "write /kindling/extensions/e1/manifest.json");
  EXPECT_EQ(write["ok"], false);
  EXPECT_EQ(write["errno"], EROFS);
  EXPECT_EQ(ask(*m, "write /kindling/extensions/e1/js/new.js")["errno"], EROFS);
  std::string mounts = ask(*m, "facts")["mounts"];
  EXPECT_NE(mounts.find("/kindling/extensions/e1 "), std::string::npos) << mounts;
  EXPECT_EQ(read_file((top / "manifest.json").string()), "{\"manifest_version\": 3}");

  auto plain = start("noext");
  ASSERT_TRUE(plain);
  EXPECT_EQ(ask(*plain, "read /kindling/extensions/e1/manifest.json")["ok"], false);

  auto bad = small_spec("badext");
  bad.extensions = {{.name = "../x", .host_dir = top.string()}};
  EXPECT_FALSE(backend_->start(bad));
  bad.extensions = {{.name = "e1", .host_dir = "relative"}};
  EXPECT_FALSE(backend_->start(bad));
  bad.extensions = {{.name = "e1", .host_dir = top.string()}, {.name = "e1", .host_dir = top.string()}};
  EXPECT_FALSE(backend_->start(bad));
  bad.extensions = {{.name = "e2", .host_dir = (top / "missing").string()}};
  auto missing = backend_->start(bad);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("cannot open extension dir"), std::string::npos);
}

TEST_F(SandboxTest, AProfileSeedIsBoundReadOnlyIntoItsMachineOnly) {
  auto seed = std::filesystem::path(backend_->config().state_dir).parent_path() / "profiles" / ".seed-s1";
  std::filesystem::create_directories(seed / "Default");
  {
    std::ofstream(seed / "Default" / "Cookies") << "cookie-db";
  }
  std::filesystem::permissions(seed / "Default" / "Cookies", std::filesystem::perms(0644));
  // The store's folder is closed to everyone but the host's root.
  std::filesystem::permissions(seed.parent_path(), std::filesystem::perms::owner_all);
  auto spec = small_spec("seeded");
  spec.profile_seed_dir = seed.string();
  auto m = start(spec);
  ASSERT_TRUE(m);
  auto read = ask(*m, "read /kindling/profile-seed/Default/Cookies");
  EXPECT_EQ(read["ok"], true) << read.dump();
  EXPECT_EQ(read["content"], "cookie-db");
  EXPECT_EQ(ask(*m, "write /kindling/profile-seed/Default/Cookies")["errno"], EROFS);
  EXPECT_EQ(ask(*m, "write /kindling/profile-seed/Default/new")["errno"], EROFS);
  EXPECT_EQ(read_file((seed / "Default" / "Cookies").string()), "cookie-db");

  auto plain = start("unseeded");
  ASSERT_TRUE(plain);
  EXPECT_EQ(ask(*plain, "read /kindling/profile-seed/Default/Cookies")["ok"], false);

  auto bad = small_spec("badseed");
  bad.profile_seed_dir = "relative/seed";
  EXPECT_FALSE(backend_->start(bad));
  bad.profile_seed_dir = (seed / "missing").string();
  auto missing = backend_->start(bad);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("cannot open profile seed"), std::string::npos);
}

TEST_F(SandboxTest, RejectsBadSpecsAndDuplicates) {
  EXPECT_FALSE(backend_->start(small_spec("Bad_Id")));
  EXPECT_FALSE(backend_->start(small_spec("")));
  auto tiny = small_spec("tiny");
  tiny.memory_limit_bytes = 1024;
  EXPECT_FALSE(backend_->start(tiny));
  auto m = start("dup");
  ASSERT_TRUE(m);
  auto again = backend_->start(small_spec("dup"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, "conflict");
}

}  // namespace
}  // namespace kindling::node::testing
