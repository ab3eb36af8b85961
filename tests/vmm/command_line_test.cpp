#include "vmm/command_line.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace kindling::vmm {
namespace {

Result<CommandLine> parse(std::vector<const char*> args) {
  args.insert(args.begin(), "kindling-vmm");
  return parse_command_line(static_cast<int>(args.size()), args.data());
}

TEST(CommandLine, DefaultsWithoutArguments) {
  auto cl = parse({});
  ASSERT_TRUE(cl);
  EXPECT_EQ(cl->id, "anonymous-instance");
  EXPECT_EQ(cl->level, "info");
  EXPECT_FALSE(cl->no_api);
  EXPECT_FALSE(cl->no_seccomp);
  EXPECT_FALSE(cl->no_ioeventfd);
  EXPECT_FALSE(cl->help);
}

TEST(CommandLine, ValuesSeparateOrAfterEquals) {
  auto cl = parse({"--api-sock", "/run/vm.sock", "--id=vm-1", "--level", "debug", "--log-path=/tmp/a=b.log",
                   "--metrics-path", "m.json", "--serial-out", "s.txt", "--no-seccomp", "--no-ioeventfd"});
  ASSERT_TRUE(cl) << cl.error().message;
  EXPECT_EQ(cl->api_sock, "/run/vm.sock");
  EXPECT_EQ(cl->id, "vm-1");
  EXPECT_EQ(cl->level, "debug");
  EXPECT_EQ(cl->log_path, "/tmp/a=b.log");
  EXPECT_EQ(cl->metrics_path, "m.json");
  EXPECT_EQ(cl->serial_out, "s.txt");
  EXPECT_TRUE(cl->no_seccomp);
  EXPECT_TRUE(cl->no_ioeventfd);
}

TEST(CommandLine, ConfigFileWithoutApi) {
  auto cl = parse({"--config-file", "vm.json", "--no-api"});
  ASSERT_TRUE(cl);
  EXPECT_EQ(cl->config_file, "vm.json");
  EXPECT_TRUE(cl->no_api);
}

TEST(CommandLine, HelpEitherSpelling) {
  EXPECT_TRUE(parse({"-h"})->help);
  EXPECT_TRUE(parse({"--help"})->help);
  std::string help = command_line_help("kindling-vmm");
  for (const char* flag : {"--api-sock", "--config-file", "--no-api", "--id", "--level", "--log-path", "--metrics-path",
                           "--serial-out", "--no-seccomp", "--no-ioeventfd"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
}

TEST(CommandLine, MistakesAreNamed) {
  auto unknown = parse({"--bogus"});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message, "unexpected argument: --bogus");
  auto positional = parse({"extra"});
  ASSERT_FALSE(positional);
  EXPECT_EQ(positional.error().message, "unexpected argument: extra");
  auto missing = parse({"--api-sock", "a.sock", "--id"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "--id needs a value");
  auto twice = parse({"--id", "a", "--id", "b"});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().message, "--id given more than once");
  auto flag_value = parse({"--no-api=yes"});
  ASSERT_FALSE(flag_value);
  EXPECT_EQ(flag_value.error().message, "--no-api takes no value");
  // A prefix of a flag is not that flag.
  EXPECT_FALSE(parse({"--api", "a.sock"}));
}

TEST(CommandLine, AFlagIsNotTheValueOfTheOneBefore) {
  auto cl = parse({"--api-sock", "--no-api"});
  ASSERT_FALSE(cl);
  EXPECT_EQ(cl.error().message, "--api-sock needs a value");
  auto explicit_value = parse({"--id=--odd-but-explicit"});
  ASSERT_TRUE(explicit_value);
  EXPECT_EQ(explicit_value->id, "--odd-but-explicit");
}

}  // namespace
}  // namespace kindling::vmm
