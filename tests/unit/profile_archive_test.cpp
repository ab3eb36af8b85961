#include "control/profile_archive.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

namespace kindling::control {
namespace {

ProfileArchive sample() {
  ProfileArchive a;
  a.generation = 7;
  a.entries = {{"Default", true, {}},
               {"Default/Cookies", false, "session_cookie=secret-value"},
               {"Default/Local Storage/leveldb/000003.log", false, std::string(10000, 'x')},
               {"Local State", false, "{}"}};
  return a;
}

ProfileKey key_of(std::uint8_t seed) {
  ProfileKey k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(seed + i);
  return k;
}

// An unsealed file with a hand-made entry list (what a tampered file holds).
std::string raw_file(const std::string& inner, std::uint64_t declared) {
  uLongf bound = compressBound(static_cast<uLong>(inner.size()));
  std::string z(bound, '\0');
  compress2(reinterpret_cast<Bytef*>(z.data()), &bound, reinterpret_cast<const Bytef*>(inner.data()),
            static_cast<uLong>(inner.size()), 6);
  z.resize(bound);
  std::string h = "KNDLPROF";
  h += std::string("\x01\x00\x00\x00", 4);
  for (int i = 0; i < 8; ++i) h.push_back('\0');
  for (int shift = 56; shift >= 0; shift -= 8) h.push_back(static_cast<char>((declared >> shift) & 0xff));
  return h + z;
}

std::string dir_entry(const std::string& name) {
  return std::string(1, '\x01') + static_cast<char>(name.size() >> 8) + static_cast<char>(name.size() & 0xff) + name;
}

TEST(ProfileArchiveTest, RoundTripsPlain) {
  auto file = write_profile_archive(sample(), std::nullopt);
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_LT(file->size(), 2000u);  // compressed
  auto back = read_profile_archive(*file, std::nullopt);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->generation, 7u);
  EXPECT_FALSE(back->encrypted);
  ASSERT_EQ(back->entries.size(), 4u);
  EXPECT_TRUE(back->entries[0].directory);
  EXPECT_EQ(back->entries[1].data, "session_cookie=secret-value");
  EXPECT_EQ(back->total_bytes, 27u + 10000u + 2u);
}

TEST(ProfileArchiveTest, RoundTripsSealedAndHidesThePlaintext) {
  auto file = write_profile_archive(sample(), key_of(1));
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_EQ(file->find("session_cookie"), std::string::npos);
  EXPECT_EQ(file->find("Cookies"), std::string::npos);
  auto back = read_profile_archive(*file, key_of(1));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_TRUE(back->encrypted);
  EXPECT_EQ(back->entries[1].data, "session_cookie=secret-value");
  auto peek = peek_profile_archive(file->substr(0, kProfileHeaderBytes));
  ASSERT_TRUE(peek);
  EXPECT_EQ(peek->generation, 7u);
  EXPECT_TRUE(peek->encrypted);
}

TEST(ProfileArchiveTest, RefusesWrongKeyTamperingAndCutFiles) {
  auto file = write_profile_archive(sample(), key_of(1));
  ASSERT_TRUE(file);
  auto wrong = read_profile_archive(*file, key_of(2));
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("authentication failed"), std::string::npos);
  EXPECT_FALSE(read_profile_archive(*file, std::nullopt));  // sealed, no key

  for (std::size_t at : {kProfileHeaderBytes + 20, file->size() - 1, file->size() / 2}) {
    std::string tampered = *file;
    tampered[at] ^= 0x01;
    EXPECT_FALSE(read_profile_archive(tampered, key_of(1))) << "byte " << at;
  }
  // The header is authenticated: a changed generation is refused.
  std::string bumped = *file;
  bumped[19] ^= 0x01;
  EXPECT_FALSE(read_profile_archive(bumped, key_of(1)));
  for (std::size_t len : {std::size_t{0}, std::size_t{10}, kProfileHeaderBytes, file->size() - 1})
    EXPECT_FALSE(read_profile_archive(file->substr(0, len), key_of(1))) << "cut at " << len;

  auto plain = write_profile_archive(sample(), std::nullopt);
  ASSERT_TRUE(plain);
  auto swapped = read_profile_archive(*plain, key_of(1));  // an unsealed file where sealed ones belong
  ASSERT_FALSE(swapped);
  EXPECT_NE(swapped.error().message.find("not encrypted"), std::string::npos);
  for (std::size_t len : {std::size_t{5}, kProfileHeaderBytes + 3, plain->size() - 1})
    EXPECT_FALSE(read_profile_archive(plain->substr(0, len), std::nullopt)) << "cut at " << len;
}

TEST(ProfileArchiveTest, RefusesHostileNames) {
  for (const char* name : {"../etc/passwd", "/etc/passwd", "Default//Cookies", "Default/./x", "a/..", "", "a\nb"}) {
    EXPECT_FALSE(check_profile_path(name)) << name;
    EXPECT_FALSE(read_profile_archive(raw_file(dir_entry(name), dir_entry(name).size()), std::nullopt)) << name;
    ProfileArchive a;
    a.entries = {{name, true, {}}};
    EXPECT_FALSE(write_profile_archive(a, std::nullopt)) << name;
  }
  EXPECT_TRUE(check_profile_path("Default/Local Storage/leveldb/000003.log"));
  std::string twice = dir_entry("Default") + dir_entry("Default");
  EXPECT_FALSE(read_profile_archive(raw_file(twice, twice.size()), std::nullopt));
  std::string ok = dir_entry("Default");
  EXPECT_TRUE(read_profile_archive(raw_file(ok, ok.size()), std::nullopt));
}

TEST(ProfileArchiveTest, RefusesSizesThatDoNotAddUp) {
  std::string inner = dir_entry("Default");
  EXPECT_FALSE(read_profile_archive(raw_file(inner, inner.size() + 1), std::nullopt));  // ends early
  EXPECT_FALSE(read_profile_archive(raw_file(inner, inner.size() - 1), std::nullopt));  // longer than declared
  EXPECT_FALSE(read_profile_archive(raw_file(inner, 1ull << 40), std::nullopt));        // past the cap
  // A file entry whose size runs past the end.
  std::string file_entry = std::string("\x02\x00\x01", 3) + "x" + std::string("\x00\x00\x00\x00\x00\x00\x10\x00", 8);
  EXPECT_FALSE(read_profile_archive(raw_file(file_entry, file_entry.size()), std::nullopt));
}

TEST(ProfileArchiveTest, EnforcesTheSizeCap) {
  ProfileLimits limits;
  limits.max_total_bytes = 5000;
  auto over = write_profile_archive(sample(), std::nullopt, limits);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, "payload_too_large");
  EXPECT_NE(over.error().message.find("5000"), std::string::npos);
  auto file = write_profile_archive(sample(), std::nullopt);
  ASSERT_TRUE(file);
  EXPECT_FALSE(read_profile_archive(*file, std::nullopt, limits));
}

}  // namespace
}  // namespace kindling::control
