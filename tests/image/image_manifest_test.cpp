// Manifest and checksum validation: an image directory verifies only while
// its image file and its manifest are exactly what the build wrote.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/secrets.hpp"
#include "image/file_digest.hpp"
#include "image/image_manifest.hpp"

namespace kindling::image {
namespace {

namespace fs = std::filesystem;

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_all(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kindling-manifest-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::string image(4096, 'x');
    for (std::size_t i = 0; i < image.size(); ++i) image[i] = static_cast<char>(i * 7);
    write_all(dir_ + "/rootfs.squashfs", image);
    ImageManifest m;
    m.key = sha256_hex("inputs");
    m.suite = "bookworm";
    m.chromium_version = "138.0.7204.183-1~deb12u1";
    m.image_file = "rootfs.squashfs";
    m.compression = "zstd-19";
    m.image_bytes = image.size();
    m.image_sha256 = *sha256_file(dir_ + "/rootfs.squashfs");
    m.agent_path = "/kindling/agent";
    m.agent_bytes = 1;
    m.agent_sha256 = sha256_hex("agent");
    m.packages = {{"chromium", "138", 250000}, {"tzdata", "2025b", 3000}};
    m.recipe_sha256 = sha256_hex("recipe");
    m.candidates = "chromium 138\n";
    m.step_seconds = {{"mmdebstrap", 61.5}};
    m.built_by = "test";
    write_all(dir_ + "/vmlinuz", "kernel bytes");
    write_all(dir_ + "/initramfs.cpio", "initramfs bytes");
    m.boot.kernel_package = "linux-image-6.1.0-28-cloud-amd64";
    m.boot.kernel_version = "6.1.0-28-cloud-amd64";
    m.boot.kernel_file = "vmlinuz";
    m.boot.kernel_bytes = 12;
    m.boot.kernel_sha256 = *sha256_file(dir_ + "/vmlinuz");
    m.boot.initramfs_file = "initramfs.cpio";
    m.boot.initramfs_bytes = 15;
    m.boot.initramfs_sha256 = *sha256_file(dir_ + "/initramfs.cpio");
    m.boot.modules = {"virtio_mmio.ko"};
    write_all(dir_ + "/manifest.json", manifest_text(m));
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(ManifestTest, UntouchedImageVerifies) {
  auto m = verify_image_dir(dir_);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->chromium_version, "138.0.7204.183-1~deb12u1");
  EXPECT_EQ(m->packages.size(), 2u);
  EXPECT_EQ(m->step_seconds.at("mmdebstrap"), 61.5);
}

TEST_F(ManifestTest, ReplacedKernelIsRejected) {
  write_all(dir_ + "/vmlinuz", "kernel bytez");  // same size, other bytes
  auto m = verify_image_dir(dir_);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("vmlinuz has sha256"), std::string::npos) << m.error().message;
}

TEST_F(ManifestTest, MissingInitramfsIsRejected) {
  fs::remove(dir_ + "/initramfs.cpio");
  auto m = verify_image_dir(dir_);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("initramfs.cpio is missing"), std::string::npos) << m.error().message;
}

TEST_F(ManifestTest, FlippedByteInImageIsRejected) {
  std::string image = read_all(dir_ + "/rootfs.squashfs");
  image[100] ^= 1;
  write_all(dir_ + "/rootfs.squashfs", image);
  auto m = verify_image_dir(dir_);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("has sha256"), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find("it was modified"), std::string::npos) << m.error().message;
}

TEST_F(ManifestTest, TruncatedImageIsRejected) {
  fs::resize_file(dir_ + "/rootfs.squashfs", 1000);
  auto m = verify_image_dir(dir_);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("has 1000 bytes, the manifest says 4096"), std::string::npos) << m.error().message;
}

TEST_F(ManifestTest, EditedManifestIsRejected) {
  std::string text = read_all(dir_ + "/manifest.json");
  auto at = text.find("138.0.7204.183");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 3, "999");
  write_all(dir_ + "/manifest.json", text);
  auto m = verify_image_dir(dir_);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("manifest was modified after the build"), std::string::npos) << m.error().message;
}

TEST_F(ManifestTest, ManifestPointingAtAnotherImageChecksumIsRejected) {
  // A consistent-looking manifest whose image checksum was swapped (and
  // self-checksum left alone) fails on the self-checksum first.
  std::string text = read_all(dir_ + "/manifest.json");
  auto m0 = parse_manifest(text);
  ASSERT_TRUE(m0);
  auto at = text.find(m0->image_sha256);
  text.replace(at, 64, std::string(64, 'a'));
  write_all(dir_ + "/manifest.json", text);
  auto m = verify_image_dir(dir_);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("modified after the build"), std::string::npos) << m.error().message;
}

TEST_F(ManifestTest, MissingManifestMeansNoImage) {
  fs::remove(dir_ + "/manifest.json");
  auto m = verify_image_dir(dir_);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("no manifest"), std::string::npos) << m.error().message;
}

TEST_F(ManifestTest, GarbageAndMissingFieldsAreRejected) {
  EXPECT_FALSE(parse_manifest("{not json"));
  auto m = parse_manifest(R"({"format": 1})");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("missing a field"), std::string::npos) << m.error().message;
  auto v = parse_manifest(R"({"format": 2})");
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("format 2"), std::string::npos) << v.error().message;
}

TEST(PackageList, ParsesDpkgQueryOutputSorted) {
  auto list = parse_package_list("tzdata\t2025b-0+deb12u1\t3000\nchromium\t138.0-1\t250000\nbroken line\n");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "chromium");
  EXPECT_EQ(list[0].installed_kib, 250000u);
  EXPECT_EQ(list[1].version, "2025b-0+deb12u1");
}

}  // namespace
}  // namespace kindling::image
