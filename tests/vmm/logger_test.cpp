#include "vmm/logger.hpp"

#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace kindling::vmm {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Each test logs to its own file and puts stderr back afterwards.
class LoggerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kindling-logger-test-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ::close(fd);
    path_ = tmpl;
  }
  void TearDown() override {
    ASSERT_TRUE(configure_logging(LogSink{}, LogLevel::kInfo));
    ::unlink(path_.c_str());
  }
  std::string path_;
};

TEST(LogLevel, FirecrackerAndSpdlogNamesInAnyCase) {
  EXPECT_EQ(parse_log_level("Trace"), LogLevel::kTrace);
  EXPECT_EQ(parse_log_level("debug"), LogLevel::kDebug);
  EXPECT_EQ(parse_log_level("INFO"), LogLevel::kInfo);
  EXPECT_EQ(parse_log_level("Warning"), LogLevel::kWarn);
  EXPECT_EQ(parse_log_level("warn"), LogLevel::kWarn);
  EXPECT_EQ(parse_log_level("Error"), LogLevel::kError);
  EXPECT_EQ(parse_log_level("off"), LogLevel::kOff);
  EXPECT_FALSE(parse_log_level("verbose"));
  EXPECT_FALSE(parse_log_level(""));
}

TEST_F(LoggerTest, FileLinesCarryTimeIdLevelAndOrigin) {
  LogSink sink;
  sink.path = path_;
  sink.instance_id = "vm-7";
  sink.show_level = true;
  sink.show_origin = true;
  ASSERT_TRUE(configure_logging(sink, LogLevel::kInfo));
  log_info("hello {} {:#x}", "guest", 255);
  const int line = __LINE__ - 1;
  log_debug("not at info level");
  std::string text = read_all(path_);
  // 2026-12-03T18:38:00.123Z [vm-7] info logger_test.cpp:NN hello guest 0xff
  ASSERT_GE(text.size(), 25u) << text;
  EXPECT_EQ(text[4], '-');
  EXPECT_EQ(text[10], 'T');
  EXPECT_EQ(text[23], 'Z');
  EXPECT_EQ(text.substr(24), " [vm-7] info logger_test.cpp:" + std::to_string(line) + " hello guest 0xff\n") << text;
}

TEST_F(LoggerTest, LevelAndOriginOnlyWhenAsked) {
  LogSink sink;
  sink.path = path_;
  sink.instance_id = "vm-8";
  sink.show_level = false;
  ASSERT_TRUE(configure_logging(sink, LogLevel::kWarn));
  log_info("filtered");
  log_warn("kept {}", 1);
  log_error("kept {}", 2);
  std::string text = read_all(path_);
  EXPECT_EQ(text.find("filtered"), std::string::npos) << text;
  EXPECT_NE(text.find("Z [vm-8] kept 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("Z [vm-8] kept 2\n"), std::string::npos) << text;
}

TEST_F(LoggerTest, TimestampIsUtcNow) {
  LogSink sink;
  sink.path = path_;
  ASSERT_TRUE(configure_logging(sink, LogLevel::kTrace));
  time_t before = ::time(nullptr);
  log_trace("tick");
  time_t after = ::time(nullptr);
  std::string text = read_all(path_);
  ASSERT_GE(text.size(), 24u);
  auto expect_for = [](time_t t) {
    tm utc{};
    gmtime_r(&t, &utc);
    char buf[32];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &utc);
    return std::string(buf);
  };
  std::string stamp = text.substr(0, 19);
  EXPECT_TRUE(stamp == expect_for(before) || stamp == expect_for(after)) << text;
}

TEST_F(LoggerTest, UnopenableFileKeepsThePreviousSink) {
  LogSink sink;
  sink.path = path_;
  ASSERT_TRUE(configure_logging(sink, LogLevel::kInfo));
  LogSink bad;
  bad.path = "/nonexistent-dir/vmm.log";
  auto s = configure_logging(bad, LogLevel::kInfo);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("Failed to open the log file"), std::string::npos);
  log_info("still here");
  EXPECT_NE(read_all(path_).find("still here"), std::string::npos);
}

}  // namespace
}  // namespace kindling::vmm
