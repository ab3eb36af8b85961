#include "control/extension_store.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "zip_builder.hpp"

namespace kindling::control {
namespace {

namespace fs = std::filesystem;

class ExtensionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kindling-ext-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_F(ExtensionStoreTest, StoresListsAndRemoves) {
  auto store = ExtensionStore::open(dir_.string());
  ASSERT_TRUE(store) << store.error().message;
  auto zip = test::build_zip({{.name = "ext/manifest.json", .data = test::kTestManifest},
                              {.name = "ext/js/mark.js", .data = "mark()"}});
  auto added = store->add(zip);
  ASSERT_TRUE(added) << added.error().message;
  EXPECT_TRUE(ExtensionStore::valid_id(added->id));
  EXPECT_EQ(added->name, "Kindling test");
  EXPECT_EQ(added->file_count, 2u);
  EXPECT_EQ(added->size_bytes, std::string(test::kTestManifest).size() + 6);

  const fs::path files = store->files_dir(added->id);
  EXPECT_EQ(slurp(files / "js/mark.js"), "mark()");
  // Machines read these as "other": files 0644, folders 0755.
  struct stat st{};
  ASSERT_EQ(::stat((files / "js/mark.js").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  ASSERT_EQ(::stat((files / "js").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);

  auto list = store->list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, added->id);
  auto got = store->get(added->id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->sha256, added->sha256);
  EXPECT_EQ(to_api_json(*got)["manifestVersion"], 3);

  EXPECT_EQ(store->get("0123456789abcdef01234567").error().code, "not_found");
  EXPECT_EQ(store->get("../../etc").error().code, "not_found");
  ASSERT_TRUE(store->remove(added->id));
  EXPECT_FALSE(fs::exists(files));
  EXPECT_EQ(store->remove(added->id).error().code, "not_found");
  EXPECT_TRUE(store->list()->empty());
}

TEST_F(ExtensionStoreTest, BadArchivesLeaveNothingBehind) {
  auto store = ExtensionStore::open(dir_.string());
  ASSERT_TRUE(store);
  auto bad = test::build_zip({{.name = "manifest.json", .data = test::kTestManifest}, {.name = "../x", .data = "1"}});
  auto added = store->add(bad);
  ASSERT_FALSE(added);
  EXPECT_EQ(added.error().code, "bad_request");
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(ExtensionStoreTest, OpenClearsInterruptedWork) {
  fs::create_directories(dir_ / ".tmp-0123" / "files");
  fs::create_directories(dir_ / ".del-4567");
  auto store = ExtensionStore::open(dir_.string());
  ASSERT_TRUE(store);
  EXPECT_TRUE(fs::is_empty(dir_));
}

}  // namespace
}  // namespace kindling::control
