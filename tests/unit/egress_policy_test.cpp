#include "node/network/egress_policy.hpp"

#include <gtest/gtest.h>

using namespace kindling::node;

TEST(EgressPolicy, ParsesStrictIpv4) {
  EXPECT_EQ(*parse_ipv4("10.200.0.1"), 0x0AC80001u);
  EXPECT_EQ(*parse_ipv4("255.255.255.255"), 0xFFFFFFFFu);
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.256", "1.2.3.4 ", " 1.2.3.4", "a.b.c.d",
                          "1..2.3", "1.2.3.-1", "1.2.3.4;rm", "0x1.2.3.4", "1.2.3.4/8"})
    EXPECT_FALSE(parse_ipv4(bad)) << bad;
}

TEST(EgressPolicy, ParsesPrefixesAndRejectsHostBits) {
  auto p = parse_ipv4_prefix("203.0.113.0/24");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->to_string(), "203.0.113.0/24");
  EXPECT_TRUE(p->contains(*parse_ipv4("203.0.113.77")));
  EXPECT_FALSE(p->contains(*parse_ipv4("203.0.114.1")));
  EXPECT_EQ(parse_ipv4_prefix("1.2.3.4")->length, 32);
  EXPECT_FALSE(parse_ipv4_prefix("203.0.113.1/24"));
  EXPECT_FALSE(parse_ipv4_prefix("1.2.3.0/33"));
  EXPECT_FALSE(parse_ipv4_prefix("1.2.3.0/"));
}

TEST(EgressPolicy, ParsesAllowRules) {
  auto r = parse_allow_rule("10.99.0.1:8080");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->to_string(), "10.99.0.1/32:8080");
  EXPECT_EQ(parse_allow_rule("192.168.0.0/16")->to_string(), "192.168.0.0/16");
  for (const char* bad : {"10.0.0.1:0", "10.0.0.1:65536", "10.0.0.1:", "[::1]:80", "fd00::/8", "10.0.0.1:80:81",
                          "10.0.0.1:8o", "10.0.0.1/8", "x\"; flush ruleset"})
    EXPECT_FALSE(parse_allow_rule(bad)) << bad;
}

TEST(EgressPolicy, SlotAddressesAndNames) {
  EgressConfig c;
  c.tag = "0a1b2c";
  EXPECT_TRUE(validate(c));
  EXPECT_EQ(ipv4_to_string(dns_address(c)), "10.200.0.1");
  EXPECT_EQ(ipv4_to_string(slot_host_address(c, 1)), "10.200.0.5");
  EXPECT_EQ(ipv4_to_string(slot_machine_address(c, 1)), "10.200.0.6");
  EXPECT_EQ(max_slots(c), 16384u);
  EXPECT_LE(host_link_name(c.tag, 99999).size(), 15u);  // IFNAMSIZ - 1
  c.tag = "0A1B2C";
  EXPECT_FALSE(validate(c));
  c.tag = "0a1b2c";
  c.pool = {0x0AC80001u, 16};
  EXPECT_FALSE(validate(c));
}

TEST(EgressPolicy, RulesetDeniesPrivateRangesAfterAllows) {
  EgressConfig c;
  c.tag = "0a1b2c";
  c.dns_upstream = *parse_ipv4("10.255.255.53");
  c.allow.push_back(*parse_allow_rule("10.99.0.1:8080"));
  std::string rules = render_ruleset(c);
  auto pos = [&](const std::string& s) { return rules.find(s); };
  ASSERT_NE(pos("ip daddr 10.200.0.0/16 reject"), std::string::npos);
  ASSERT_NE(pos("ip daddr 10.99.0.1/32 tcp dport 8080 accept"), std::string::npos);
  ASSERT_NE(pos("169.254.0.0/16"), std::string::npos);
  ASSERT_NE(pos("dnat ip to 10.255.255.53:53"), std::string::npos);
  // Other sessions stay unreachable whatever the allow rules; allows precede the deny set.
  EXPECT_LT(pos("ip daddr 10.200.0.0/16 reject"), pos("10.99.0.1/32"));
  EXPECT_LT(pos("10.99.0.1/32"), pos("10.0.0.0/8"));
  EXPECT_NE(pos("iifname \"kn0a1b2c-*\" reject"), std::string::npos);
  EXPECT_NE(pos("meta nfproto ipv6 reject"), std::string::npos);
}

TEST(EgressPolicy, FirstNameserverSkipsLoopback) {
  EXPECT_EQ(ipv4_to_string(*first_nameserver("# x\nnameserver 127.0.0.53\nnameserver 10.255.255.53\n")),
            "10.255.255.53");
  EXPECT_FALSE(first_nameserver("nameserver ::1\nsearch x\n"));
}
