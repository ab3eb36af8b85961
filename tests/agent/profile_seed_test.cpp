// The agent's copy of a saved profile into a fresh user-data-dir.
#include "agent/profile_seed.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/agent_config.hpp"

namespace kindling::agent {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(AgentProfileSeed, CopiesFoldersAndFilesButNoLinks) {
  const fs::path dir = fs::temp_directory_path() / ("kindling-seed-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const fs::path seed = dir / "seed", udd = dir / "profile";
  fs::create_directories(seed / "Default/Local Storage/leveldb");
  std::ofstream(seed / "Local State") << "{}";
  std::ofstream(seed / "Default/Cookies") << "cookies";
  std::ofstream(seed / "Default/Local Storage/leveldb/000003.log") << "ls";
  fs::create_symlink("/etc/passwd", seed / "Default/Preferences");
  fs::create_symlink("/etc", seed / "Default/IndexedDB");
  ASSERT_EQ(::mkfifo((seed / "Default/fifo").c_str(), 0600), 0);
  fs::create_directories(udd);

  auto copied = copy_profile_seed(seed.string(), udd.string(), ::geteuid(), ::getegid());
  ASSERT_TRUE(copied) << copied.error().message;
  EXPECT_EQ(slurp(udd / "Local State"), "{}");
  EXPECT_EQ(slurp(udd / "Default/Cookies"), "cookies");
  EXPECT_EQ(slurp(udd / "Default/Local Storage/leveldb/000003.log"), "ls");
  EXPECT_FALSE(fs::exists(fs::symlink_status(udd / "Default/Preferences")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(udd / "Default/IndexedDB")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(udd / "Default/fifo")));
  struct stat st{};
  ASSERT_EQ(::stat((udd / "Default/Cookies").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(copy_profile_seed((dir / "missing").string(), udd.string(), ::geteuid(), ::getegid()));
  fs::remove_all(dir);
}

TEST(AgentProfileSeed, ParsesTheOption) {
  const char* ok[] = {"kindling-agent", "--listen", "unix:/a", "--profile-seed", "/kindling/profile-seed"};
  auto parsed = parse_agent_args(5, ok);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->config.profile_seed_dir, "/kindling/profile-seed");
  const char* relative[] = {"kindling-agent", "--listen", "unix:/a", "--profile-seed", "seed"};
  EXPECT_FALSE(parse_agent_args(5, relative).ok());
  const char* climbing[] = {"kindling-agent", "--listen", "unix:/a", "--profile-seed", "/kindling/../etc"};
  EXPECT_FALSE(parse_agent_args(5, climbing).ok());
}

}  // namespace
}  // namespace kindling::agent
