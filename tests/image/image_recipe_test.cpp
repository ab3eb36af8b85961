// The recipe: what the key covers, and the fixed argv the tools get.
#include <gtest/gtest.h>

#include <algorithm>

#include "image/agent_binary.hpp"
#include "image/image_recipe.hpp"

namespace kindling::image {
namespace {

TEST(Recipe, KeyChangesWithEachInput) {
  std::string text = recipe_text(default_recipe());
  std::string base = cache_key(text, "chromium 1\n", "aa", "ii");
  EXPECT_EQ(base, cache_key(text, "chromium 1\n", "aa", "ii"));
  EXPECT_NE(base, cache_key(text, "chromium 2\n", "aa", "ii"));
  EXPECT_NE(base, cache_key(text, "chromium 1\n", "ab", "ii"));
  EXPECT_NE(base, cache_key(text, "chromium 1\n", "aa", "ij"));
  ImageRecipe r = default_recipe();
  r.packages.push_back("fonts-noto-cjk");
  EXPECT_NE(base, cache_key(recipe_text(r), "chromium 1\n", "aa", "ii"));
  EXPECT_EQ(base.size(), 64u);
}

TEST(Recipe, MmdebstrapArgvIsFixedAndComplete) {
  auto argv = mmdebstrap_argv(default_recipe(), "/x/rootfs");
  EXPECT_EQ(argv[0], "mmdebstrap");
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--variant=minbase"), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--dpkgopt=path-exclude=/usr/share/man/*"), argv.end());
  auto include = std::find_if(argv.begin(), argv.end(), [](auto& a) { return a.rfind("--include=", 0) == 0; });
  ASSERT_NE(include, argv.end());
  EXPECT_NE(include->find("chromium"), std::string::npos);
  EXPECT_NE(include->find("fonts-noto-color-emoji"), std::string::npos);
  EXPECT_NE(include->find("fonts-droid-fallback"), std::string::npos);
  // suite, target, then the sources as whole arguments (no shell splitting)
  auto suite = std::find(argv.begin(), argv.end(), "bookworm");
  ASSERT_NE(suite, argv.end());
  EXPECT_EQ(*(suite + 1), "/x/rootfs");
  EXPECT_EQ(*(suite + 2), "deb http://deb.debian.org/debian bookworm main");
}

TEST(Recipe, MksquashfsPinsTimes) {
  auto argv = mksquashfs_argv(default_recipe(), "/r", "/o.sqfs");
  auto at = std::find(argv.begin(), argv.end(), "-all-time");
  ASSERT_NE(at, argv.end());
  EXPECT_EQ(*(at + 1), std::to_string(default_recipe().source_date_epoch));
  EXPECT_NE(std::find(argv.begin(), argv.end(), "-mkfs-time"), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "zstd"), argv.end());
}

TEST(Recipe, AptPolicyParsing) {
  const char* out =
      "chromium:\n  Installed: (none)\n  Candidate: 138.0.7204.183-1~deb12u1\n  Version table:\n"
      "     138.0.7204.183-1~deb12u1 500\n"
      "tzdata:\n  Installed: 2025b-0+deb12u1\n  Candidate: 2025b-0+deb12u1\n";
  auto text = parse_apt_policy(out, {"tzdata", "chromium"});
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_EQ(*text, "chromium 138.0.7204.183-1~deb12u1\ntzdata 2025b-0+deb12u1\n");
  auto missing = parse_apt_policy(out, {"chromium", "fonts-liberation"});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("fonts-liberation"), std::string::npos);
  auto none = parse_apt_policy("x:\n  Candidate: (none)\n", {"x"});
  EXPECT_FALSE(none);
}

TEST(AgentBinary, DynamicExecutableIsRefused) {
  auto st = check_static_elf("/bin/true");  // Debian's coreutils: dynamic
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("dynamically linked"), std::string::npos) << st.error().message;
  EXPECT_FALSE(check_static_elf("/etc/hostname"));
}

#ifdef KINDLING_AGENT_PATH
TEST(AgentBinary, BuiltAgentIsStatic) {
  auto st = check_static_elf(KINDLING_AGENT_PATH);
  EXPECT_TRUE(st) << st.error().message;
}
#endif

}  // namespace
}  // namespace kindling::image
