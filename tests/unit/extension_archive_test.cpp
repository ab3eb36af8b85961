#include "control/extension_archive.hpp"

#include <gtest/gtest.h>

#include "zip_builder.hpp"

namespace kindling::control {
namespace {

using test::build_zip;
using test::kTestManifest;
using test::ZipEntry;

std::string refusal(const std::string& zip, const ExtensionArchiveLimits& limits = {}) {
  auto r = read_extension_archive(zip, limits);
  if (r) return "(accepted)";
  EXPECT_EQ(r.error().code, "bad_request") << r.error().message;
  return r.error().message;
}

TEST(ExtensionArchive, ReadsAnExtensionAtTheRoot) {
  auto zip = build_zip({{.name = "manifest.json", .data = kTestManifest},
                        {.name = "mark.js", .data = "document.documentElement.dataset.kindlingExt = '1';", .method = 0},
                        {.name = "icons/", .data = "", .method = 0, .mode = 040755},
                        {.name = "empty/", .data = "", .method = 0, .mode = 040755},
                        {.name = "icons/a.txt", .data = std::string(5000, 'x')},
                        {.name = "blank.txt", .data = ""}});
  auto r = read_extension_archive(zip);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->manifest.name, "Kindling test");
  EXPECT_EQ(r->manifest.version, "1.0.2");
  EXPECT_EQ(r->manifest.manifest_version, 3);
  EXPECT_EQ(r->manifest.description, "marks pages");
  ASSERT_EQ(r->files.size(), 4u);
  EXPECT_EQ(r->files[1].path, "mark.js");
  EXPECT_EQ(r->files[2].path, "icons/a.txt");
  EXPECT_EQ(r->files[2].data, std::string(5000, 'x'));
  EXPECT_EQ(r->files[3].data, "");
  // "icons/" has a file in it; only "empty" needs making on its own.
  ASSERT_EQ(r->empty_dirs.size(), 1u);
  EXPECT_EQ(r->empty_dirs[0], "empty");
}

TEST(ExtensionArchive, StripsOneTopLevelFolderAndMacMetadata) {
  auto zip = build_zip({{.name = "my-ext/", .method = 0, .mode = 040755},
                        {.name = "my-ext/manifest.json", .data = kTestManifest},
                        {.name = "my-ext/js/mark.js", .data = "1"},
                        {.name = "__MACOSX/my-ext/._manifest.json", .data = "resource fork"}});
  auto r = read_extension_archive(zip);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->files.size(), 2u);
  EXPECT_EQ(r->files[0].path, "manifest.json");
  EXPECT_EQ(r->files[1].path, "js/mark.js");
  EXPECT_TRUE(r->empty_dirs.empty());
}

TEST(ExtensionArchive, RefusesPathsThatLeaveTheFolder) {
  auto with = [](std::string name) {
    return build_zip({{.name = "manifest.json", .data = kTestManifest}, {.name = std::move(name), .data = "x"}});
  };
  EXPECT_NE(refusal(with("../evil.js")).find("leaves the extension's folder"), std::string::npos);
  EXPECT_NE(refusal(with("a/../../evil.js")).find("'..'"), std::string::npos);
  EXPECT_NE(refusal(with("/etc/cron.d/x")).find("absolute path"), std::string::npos);
  EXPECT_NE(refusal(with("a//b")).find("empty or '.'"), std::string::npos);
  EXPECT_NE(refusal(with("./a")).find("empty or '.'"), std::string::npos);
  EXPECT_NE(refusal(with("..\\evil.js")).find("backslash"), std::string::npos);
  EXPECT_NE(refusal(with(std::string("a\0b", 3))).find("control character"), std::string::npos);
  EXPECT_NE(refusal(with("a\nb")).find("control character"), std::string::npos);
  EXPECT_NE(refusal(with(std::string(600, 'a'))).find("longer than"), std::string::npos);
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "d/";
  EXPECT_NE(refusal(with(deep + "f")).find("nested deeper"), std::string::npos);
}

TEST(ExtensionArchive, RefusesLinksAndSpecialFiles) {
  auto link = build_zip({{.name = "manifest.json", .data = kTestManifest},
                         {.name = "evil", .data = "/etc/shadow", .method = 0, .mode = 0120777}});
  EXPECT_NE(refusal(link).find("symbolic link"), std::string::npos);
  auto fifo = build_zip({{.name = "manifest.json", .data = kTestManifest},
                         {.name = "pipe", .data = "", .method = 0, .mode = 010644}});
  EXPECT_NE(refusal(fifo).find("not a plain file"), std::string::npos);
  // A DOS-made entry has no type bits: an ordinary file.
  auto dos = build_zip({{.name = "manifest.json", .data = kTestManifest, .made_by_os = 0, .mode = 0}});
  EXPECT_TRUE(read_extension_archive(dos));
}

TEST(ExtensionArchive, RefusesDuplicateNames) {
  auto dup = build_zip({{.name = "manifest.json", .data = kTestManifest}, {.name = "manifest.json", .data = "{}"}});
  EXPECT_NE(refusal(dup).find("appears twice"), std::string::npos);
  auto file_and_dir = build_zip({{.name = "manifest.json", .data = kTestManifest},
                                 {.name = "a", .data = "x"},
                                 {.name = "a/b", .data = "y"}});
  EXPECT_NE(refusal(file_and_dir).find("a file and a folder"), std::string::npos);
  auto dir_then_file = build_zip({{.name = "manifest.json", .data = kTestManifest},
                                  {.name = "a/", .method = 0, .mode = 040755},
                                  {.name = "a", .data = "x"}});
  EXPECT_NE(refusal(dir_then_file).find("twice"), std::string::npos);
}

TEST(ExtensionArchive, RefusesTooManyEntries) {
  std::vector<ZipEntry> entries = {{.name = "manifest.json", .data = kTestManifest}};
  for (int i = 0; i < 10; ++i) entries.push_back({.name = "f" + std::to_string(i), .data = "x"});
  ExtensionArchiveLimits limits;
  limits.max_entries = 8;
  EXPECT_NE(refusal(build_zip(entries), limits).find("11 entries; at most 8"), std::string::npos);
}

TEST(ExtensionArchive, RefusesZipBombs) {
  // 16 MiB of zeros deflate to ~16 KiB: over the ratio.
  auto ratio = build_zip({{.name = "manifest.json", .data = kTestManifest},
                          {.name = "zeros", .data = std::string(16u << 20, '\0')}});
  EXPECT_LT(ratio.size(), 64u << 10);
  EXPECT_NE(refusal(ratio).find("ratio"), std::string::npos);
  // Many files each under the ratio floor, together over the total.
  std::vector<ZipEntry> many = {{.name = "manifest.json", .data = kTestManifest}};
  for (int i = 0; i < 40; ++i) many.push_back({.name = "z" + std::to_string(i), .data = std::string(1u << 20, 'a')});
  ExtensionArchiveLimits limits;
  limits.max_total_bytes = 32u << 20;
  EXPECT_NE(refusal(build_zip(many), limits).find("inflates to more than"), std::string::npos);
  // A central directory that understates the size: inflation stops at the
  // declared size instead of trusting the stream.
  auto liar = build_zip({{.name = "manifest.json", .data = kTestManifest},
                         {.name = "big", .data = std::string(100000, 'a'), .declared_size = 100}});
  EXPECT_NE(refusal(liar).find("does not inflate to its declared size"), std::string::npos);
  ExtensionArchiveLimits small;
  small.max_file_bytes = 1000;
  auto big = build_zip({{.name = "manifest.json", .data = kTestManifest},
                        {.name = "big", .data = std::string(5000, 'a'), .method = 0}});
  EXPECT_NE(refusal(big, small).find("per file"), std::string::npos);
}

TEST(ExtensionArchive, RefusesOverlappingEntries) {
  // Entry "b"'s local header and data sit inside entry "a"'s stored data.
  std::string inner_data = "hidden";
  std::string inner = test::local_header("b", 0, test::crc_of(inner_data), 6, 6) + inner_data;
  std::uint32_t b_offset = static_cast<std::uint32_t>(30 + std::string("manifest.json").size());
  auto zip = build_zip(
      {{.name = "manifest.json", .data = inner, .method = 0},
       {.name = "b", .data = inner_data, .method = 0, .local_offset = b_offset, .write_local = false}});
  EXPECT_NE(refusal(zip).find("overlap"), std::string::npos);
}

TEST(ExtensionArchive, RefusesCorruptOrUnsupportedArchives) {
  EXPECT_NE(refusal("not a zip at all, just some text that is long enough").find("not a zip"), std::string::npos);
  EXPECT_NE(refusal("PK").find("too short"), std::string::npos);
  auto good = build_zip({{.name = "manifest.json", .data = kTestManifest}});
  EXPECT_NE(refusal(good.substr(0, good.size() - 3)).find("not a zip"), std::string::npos);
  EXPECT_NE(refusal(good.substr(10)).find("outside the archive"), std::string::npos);
  auto crc = build_zip({{.name = "manifest.json", .data = kTestManifest, .declared_crc = 1234}});
  EXPECT_NE(refusal(crc).find("CRC-32"), std::string::npos);
  auto encrypted = build_zip({{.name = "manifest.json", .data = kTestManifest, .flags = 1}});
  EXPECT_NE(refusal(encrypted).find("encrypted"), std::string::npos);
  auto bzip2 = build_zip({{.name = "manifest.json", .data = kTestManifest, .method = 12}});
  EXPECT_NE(refusal(bzip2).find("compression method 12"), std::string::npos);
  EXPECT_NE(refusal(build_zip({})).find("empty"), std::string::npos);
  // A comment is fine; one that hides a second end record is not read as one.
  EXPECT_TRUE(read_extension_archive(build_zip({{.name = "manifest.json", .data = kTestManifest}}, "a comment")));
}

TEST(ExtensionArchive, NeedsAValidManifest) {
  auto one = [](std::string name, std::string data) {
    return build_zip({{.name = std::move(name), .data = std::move(data)}, {.name = "x.js", .data = "1"}});
  };
  EXPECT_NE(refusal(one("readme.txt", "hi")).find("no manifest.json"), std::string::npos);
  EXPECT_NE(refusal(one("a/manifest.json", kTestManifest)).find("no manifest.json"), std::string::npos);
  EXPECT_NE(refusal(one("manifest.json", "{not json")).find("not valid JSON"), std::string::npos);
  EXPECT_NE(refusal(one("manifest.json", "[1]")).find("JSON object"), std::string::npos);
  EXPECT_NE(refusal(one("manifest.json", R"({"manifest_version": 1, "name": "x", "version": "1"})"))
                .find("must be 3"),
            std::string::npos);
  EXPECT_NE(refusal(one("manifest.json", R"({"manifest_version": 3, "version": "1"})")).find("'name'"),
            std::string::npos);
  EXPECT_NE(refusal(one("manifest.json", R"({"manifest_version": 3, "name": "x", "version": "1.02"})"))
                .find("'version'"),
            std::string::npos);
  EXPECT_NE(refusal(one("manifest.json", R"({"manifest_version": 3, "name": "x", "version": "1.2.3.4.5"})"))
                .find("'version'"),
            std::string::npos);
  EXPECT_NE(refusal(one("manifest.json", R"({"manifest_version": 3, "name": "x", "version": "70000"})"))
                .find("'version'"),
            std::string::npos);
  EXPECT_NE(refusal(one("manifest.json", R"({"manifest_version": 2, "name": "x", "version": "1"})"))
                .find("Chromium no longer loads"),
            std::string::npos);
  // Comments are allowed, as Chromium allows them.
  auto r = read_extension_archive(
      one("manifest.json", "// made by hand\n{\"manifest_version\": 3, \"name\": \"x\", \"version\": \"0.1\"}"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->manifest.manifest_version, 3);
}

TEST(ExtensionArchive, RefusesNamesChromiumReserves) {
  auto zip = build_zip({{.name = "manifest.json", .data = kTestManifest}, {.name = "_metadata/x", .data = "1"}});
  EXPECT_NE(refusal(zip).find("reserved by Chromium"), std::string::npos);
  auto locales = build_zip({{.name = "manifest.json", .data = kTestManifest},
                            {.name = "_locales/en/messages.json", .data = "{}"}});
  EXPECT_TRUE(read_extension_archive(locales));
}

}  // namespace
}  // namespace kindling::control
