#include "control/session_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "control/api_keys.hpp"

using namespace kindling;
using namespace kindling::control;

namespace {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/kindling-store-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

}  // namespace

TEST(SessionStore, SavesFindsAndListsRecords) {
  TempDir dir;
  auto store = SessionStore::open(dir.path + "/k.db");
  ASSERT_TRUE(store.ok()) << store.error().message;
  SessionRecord a;
  a.id = "a";
  a.status = SessionStatus::kReady;
  a.created_at_ms = 1000;
  a.chromium_sandbox = true;
  a.timings.ready_ms = 12.5;
  SessionRecord b = a;
  b.id = "b";
  b.created_at_ms = 2000;
  b.status = SessionStatus::kReleased;
  b.end_reason = "released by the API";
  ASSERT_TRUE((*store)->save(a).ok());
  ASSERT_TRUE((*store)->save(b).ok());
  auto found = (*store)->find("a");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->status, SessionStatus::kReady);
  EXPECT_EQ((*found)->timings.ready_ms.value(), 12.5);
  EXPECT_TRUE((*found)->chromium_sandbox.value());
  EXPECT_FALSE((*store)->find("zzz")->has_value());
  auto live = (*store)->list(true, 10);
  ASSERT_EQ(live->size(), 1u);
  auto all = (*store)->list(false, 10);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, "b");  // newest first
  a.status = SessionStatus::kFailed;
  ASSERT_TRUE((*store)->save(a).ok());
  EXPECT_EQ((*store)->list(true, 10)->size(), 0u);
}

TEST(ApiKeys, GeneratesOnceThenVerifiesFromTheFile) {
  TempDir dir;
  auto store = SessionStore::open(dir.path + "/k.db");
  ASSERT_TRUE(store.ok());
  ApiKeys::Setup how;
  auto keys = ApiKeys::setup(**store, dir.path, "", &how);
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  EXPECT_TRUE(how.generated);
  std::string key;
  {
    std::ifstream in(dir.path + "/api-key");
    std::getline(in, key);
  }
  EXPECT_TRUE(keys->verify(key));
  EXPECT_FALSE(keys->verify(key + "x"));
  EXPECT_FALSE(keys->verify(""));
  EXPECT_EQ(std::filesystem::status(dir.path + "/api-key").permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);
  // The database holds only the hash.
  auto hashes = (*store)->api_key_hashes();
  ASSERT_EQ(hashes->size(), 1u);
  EXPECT_EQ((*hashes)[0].find(key), std::string::npos);
  // Second start: same key, nothing regenerated.
  ApiKeys::Setup again;
  auto keys2 = ApiKeys::setup(**store, dir.path, "", &again);
  EXPECT_FALSE(again.generated);
  EXPECT_TRUE(keys2->verify(key));
  // The environment overrides the file.
  ApiKeys::Setup env;
  auto keys3 = ApiKeys::setup(**store, dir.path, "an-environment-key-123", &env);
  EXPECT_TRUE(env.from_environment);
  EXPECT_TRUE(keys3->verify("an-environment-key-123"));
  EXPECT_FALSE(keys3->verify(key));
  EXPECT_FALSE(ApiKeys::setup(**store, dir.path, "short", nullptr).ok());
}
