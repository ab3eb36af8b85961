#include "control/profile_store.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/unique_fd.hpp"
#include "control/profile_collect.hpp"

namespace kindling::control {
namespace {

namespace fs = std::filesystem;

class ProfileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kindling-profile-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void put(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
}

TEST_F(ProfileStoreTest, CreatesSavesSeedsAndRemoves) {
  auto store = ProfileStore::open((dir_ / "profiles").string(), std::nullopt);
  ASSERT_TRUE(store) << store.error().message;
  auto created = store->create("shop login");
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_TRUE(ProfileStore::valid_id(created->id));
  EXPECT_EQ(created->generation, 0u);
  EXPECT_EQ(created->name, "shop login");

  auto saved = store->save(created->id, {{"Default", true, {}}, {"Default/Cookies", false, "c=1"}}, 1);
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_EQ(saved->generation, 1u);
  EXPECT_FALSE(fs::exists(dir_ / "profiles" / created->id / "state.kprof.tmp"));

  auto seed = store->make_seed(created->id, "session1");
  ASSERT_TRUE(seed) << seed.error().message;
  EXPECT_EQ(slurp(fs::path(*seed) / "Default/Cookies"), "c=1");
  struct stat st {};
  ASSERT_EQ(::stat((fs::path(*seed) / "Default/Cookies").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  store->remove_seed("session1");
  EXPECT_FALSE(fs::exists(*seed));

  auto list = store->list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  ASSERT_TRUE(store->remove(created->id));
  EXPECT_EQ(store->get(created->id).error().code, "not_found");
  EXPECT_EQ(store->get("../../etc").error().code, "not_found");
}

TEST_F(ProfileStoreTest, AnInterruptedSaveLeavesThePreviousVersion) {
  const auto root = dir_ / "profiles";
  std::string id;
  {
    auto store = ProfileStore::open(root.string(), std::nullopt);
    ASSERT_TRUE(store);
    auto created = store->create("");
    ASSERT_TRUE(created);
    id = created->id;
    ASSERT_TRUE(store->save(id, {{"Local State", false, "v1"}}, 1));
    // What a kill -9 between write and rename leaves, and a seed of a dead session.
    put(root / id / "state.kprof.tmp", "half a file");
    fs::create_directories(root / ".seed-deadbeef" / "Default");
  }
  auto store = ProfileStore::open(root.string(), std::nullopt);
  ASSERT_TRUE(store);
  EXPECT_FALSE(fs::exists(root / id / "state.kprof.tmp"));
  EXPECT_FALSE(fs::exists(root / ".seed-deadbeef"));
  auto info = store->get(id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->generation, 1u);
  auto seed = store->make_seed(id, "s2");
  ASSERT_TRUE(seed);
  EXPECT_EQ(slurp(fs::path(*seed) / "Local State"), "v1");
}

TEST_F(ProfileStoreTest, EncryptsAtRestAndRefusesOtherKeys) {
  ProfileKey key{};
  key.fill(7);
  auto store = ProfileStore::open((dir_ / "p").string(), key);
  ASSERT_TRUE(store);
  auto created = store->create("");
  ASSERT_TRUE(created);
  EXPECT_TRUE(created->encrypted);
  ASSERT_TRUE(store->save(created->id, {{"Default", true, {}}, {"Default/Cookies", false, "kindling_session=abc"}}, 1));
  const auto file = slurp(dir_ / "p" / created->id / "state.kprof");
  EXPECT_EQ(file.find("kindling_session"), std::string::npos);
  EXPECT_EQ(file.find("Cookies"), std::string::npos);
  ASSERT_TRUE(store->make_seed(created->id, "a"));

  ProfileKey other{};
  other.fill(8);
  auto reopened = ProfileStore::open((dir_ / "p").string(), other);
  ASSERT_TRUE(reopened);
  auto seed = reopened->make_seed(created->id, "b");
  ASSERT_FALSE(seed);
  EXPECT_NE(seed.error().message.find("authentication failed"), std::string::npos);
  auto plain = ProfileStore::open((dir_ / "p").string(), std::nullopt);
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->make_seed(created->id, "c"));
}

TEST_F(ProfileStoreTest, ReadsKeyFiles) {
  fs::create_directories(dir_);
  put(dir_ / "hex", std::string(64, 'a') + "\n");
  put(dir_ / "raw", std::string(32, '\x01'));
  put(dir_ / "short", "abcd");
  auto hex = read_profile_key_file((dir_ / "hex").string());
  ASSERT_TRUE(hex) << hex.error().message;
  EXPECT_EQ((*hex)[0], 0xaa);
  ASSERT_TRUE(read_profile_key_file((dir_ / "raw").string()));
  EXPECT_FALSE(read_profile_key_file((dir_ / "short").string()));
  EXPECT_FALSE(read_profile_key_file((dir_ / "missing").string()));
}

TEST_F(ProfileStoreTest, CollectKeepsTheAllowlistAndNoLinks) {
  const auto udd = dir_ / "udd";
  put(udd / "Local State", "{}");
  put(udd / "Default/Cookies", "cookies");
  put(udd / "Default/History", "not kept");
  put(udd / "Default/Cache/Cache_Data/data_0", "cache");
  put(udd / "Default/Local Storage/leveldb/000003.log", "ls");
  put(udd / "Default/Service Worker/CacheStorage/x", "cache");
  put(udd / "Default/Service Worker/Database/CURRENT", "sw");
  put(udd / "SingletonLock", "x");
  fs::create_symlink("/etc/passwd", udd / "Default/Preferences");
  fs::create_symlink("/etc", udd / "Default/IndexedDB");
  ASSERT_EQ(::mkfifo((udd / "Default/Web Data").c_str(), 0600), 0);
  UniqueFd fd(::open(udd.c_str(), O_RDONLY | O_DIRECTORY));
  auto entries = collect_profile(fd.get(), ProfileLimits{});
  ASSERT_TRUE(entries) << entries.error().message;
  std::vector<std::string> names;
  for (const auto& e : *entries) names.push_back(e.path);
  std::vector<std::string> expected = {"Default",
                                       "Default/Cookies",
                                       "Default/Local Storage",
                                       "Default/Local Storage/leveldb",
                                       "Default/Local Storage/leveldb/000003.log",
                                       "Default/Service Worker",
                                       "Default/Service Worker/Database",
                                       "Default/Service Worker/Database/CURRENT",
                                       "Local State"};
  EXPECT_EQ(names, expected);

  // Links are skipped, but still bound the walk.
  for (int i = 0; i < 50; ++i) fs::create_symlink("/etc", udd / "Default/Local Storage" / ("link" + std::to_string(i)));
  ProfileLimits few;
  few.max_entries = 10;
  auto busy = collect_profile(fd.get(), few);
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, "payload_too_large");
  EXPECT_NE(busy.error().message.find("'Default/Local Storage' holds more than 10 names"), std::string::npos)
      << busy.error().message;
  const auto udd2 = dir_ / "udd2";
  for (int d = 0; d < 4; ++d) {
    const auto sub = udd2 / "Default/Local Storage" / ("d" + std::to_string(d));
    fs::create_directories(sub);
    for (int i = 0; i < 11; ++i) fs::create_symlink("/etc", sub / ("link" + std::to_string(i)));
  }
  UniqueFd fd2(::open(udd2.c_str(), O_RDONLY | O_DIRECTORY));
  ProfileLimits some;
  some.max_entries = 12;  // each folder fits, and the entries kept, but not all the names looked at
  auto many = collect_profile(fd2.get(), some);
  ASSERT_FALSE(many);
  EXPECT_NE(many.error().message.find("more than 48 names"), std::string::npos) << many.error().message;

  ProfileLimits small;
  small.max_total_bytes = 4;
  auto over = collect_profile(fd.get(), small);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, "payload_too_large");
  EXPECT_NE(over.error().message.find("size cap of 4 bytes"), std::string::npos);
}

}  // namespace
}  // namespace kindling::control
