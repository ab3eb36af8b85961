#include "node/network/egress_policy.hpp"

#include <sstream>

namespace kindling::node {

namespace {

std::uint32_t mask_of(int length) { return length == 0 ? 0 : ~std::uint32_t{0} << (32 - length); }

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

bool Ipv4Prefix::contains(std::uint32_t a) const { return (a & mask_of(length)) == address; }

std::string Ipv4Prefix::to_string() const { return ipv4_to_string(address) + "/" + std::to_string(length); }

std::string ipv4_to_string(std::uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." + std::to_string((a >> 8) & 255) +
         "." + std::to_string(a & 255);
}

Result<std::uint32_t> parse_ipv4(const std::string& text) {
  auto bad = [&] { return make_error("'" + text + "' is not an IPv4 address (a.b.c.d)", "invalid"); };
  if (text.size() > 15) return bad();
  std::uint32_t value = 0;
  std::size_t start = 0;
  for (int part = 0; part < 4; ++part) {
    std::size_t dot = text.find('.', start);
    if ((part < 3) != (dot != std::string::npos)) return bad();
    std::string digits = text.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!all_digits(digits) || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0')) return bad();
    int v = std::stoi(digits);
    if (v > 255) return bad();
    value = (value << 8) | static_cast<std::uint32_t>(v);
    start = dot + 1;
  }
  return value;
}

Result<Ipv4Prefix> parse_ipv4_prefix(const std::string& text) {
  auto slash = text.find('/');
  KINDLING_TRY(address, parse_ipv4(text.substr(0, slash)));
  int length = 32;
  if (slash != std::string::npos) {
    std::string digits = text.substr(slash + 1);
    if (!all_digits(digits) || digits.size() > 2 || std::stoi(digits) > 32)
      return make_error("'" + text + "': prefix length must be 0..32", "invalid");
    length = std::stoi(digits);
  }
  if ((address & ~mask_of(length)) != 0)
    return make_error("'" + text + "' has host bits set; did you mean " +
                          Ipv4Prefix{address & mask_of(length), length}.to_string() + "?",
                      "invalid");
  return Ipv4Prefix{address, length};
}

std::string AllowRule::to_string() const {
  return prefix.to_string() + (port ? ":" + std::to_string(*port) : std::string());
}

Result<AllowRule> parse_allow_rule(const std::string& text) {
  if (text.find(':') != text.rfind(':') || text.find('[') != std::string::npos)
    return make_error("allow rule '" + text + "': IPv6 is not supported (machines have no IPv6 egress)", "invalid");
  AllowRule rule;
  std::string cidr = text;
  if (auto colon = text.find(':'); colon != std::string::npos) {
    std::string digits = text.substr(colon + 1);
    if (!all_digits(digits) || digits.size() > 5 || std::stoi(digits) < 1 || std::stoi(digits) > 65535)
      return make_error("allow rule '" + text + "': port must be 1..65535", "invalid");
    rule.port = static_cast<std::uint16_t>(std::stoi(digits));
    cidr = text.substr(0, colon);
  }
  auto prefix = parse_ipv4_prefix(cidr);
  if (!prefix) return make_error("allow rule '" + text + "': " + prefix.error().message, "invalid");
  rule.prefix = *prefix;
  return rule;
}

const std::vector<Ipv4Prefix>& denied_ipv4_ranges() {
  static const std::vector<Ipv4Prefix> ranges = {
      {0x00000000u, 8},   // 0.0.0.0/8 "this network"
      {0x0A000000u, 8},   // 10/8
      {0x64400000u, 10},  // 100.64/10 carrier-grade NAT
      {0x7F000000u, 8},   // loopback
      {0xA9FE0000u, 16},  // link-local, 169.254.169.254 metadata
      {0xAC100000u, 12},  // 172.16/12
      {0xC0000000u, 24},  // 192.0.0.0/24 IETF protocol assignments
      {0xC0A80000u, 16},  // 192.168/16
      {0xC6120000u, 15},  // 198.18/15 benchmarking
      {0xE0000000u, 4},   // multicast
      {0xF0000000u, 4},   // reserved, broadcast
  };
  return ranges;
}

Status validate(const EgressConfig& c) {
  if (c.tag.size() != 6) return make_error("network tag must be 6 hex digits");
  for (char ch : c.tag)
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return make_error("network tag must be 6 hex digits");
  if (c.pool.length < 8 || c.pool.length > 29)
    return make_error("network pool " + c.pool.to_string() + ": prefix length must be 8..29", "invalid");
  if ((c.pool.address & ~mask_of(c.pool.length)) != 0)
    return make_error("network pool " + c.pool.to_string() + " has host bits set", "invalid");
  if (c.lock_dir.empty() || c.lock_dir[0] != '/') return make_error("network lock dir must be absolute");
  return ok_status();
}

std::string egress_table_name(const std::string& tag) { return "kindling_" + tag; }
std::string host_link_prefix(const std::string& tag) { return "kn" + tag + "-"; }
std::string host_link_name(const std::string& tag, unsigned slot) { return host_link_prefix(tag) + std::to_string(slot); }
std::string netns_prefix(const std::string& tag) { return "kindling-" + tag + "-"; }
std::string netns_name(const std::string& tag, unsigned slot) { return netns_prefix(tag) + std::to_string(slot); }

unsigned max_slots(const EgressConfig& c) {
  // Link names allow 5 digits of slot number.
  std::uint64_t n = (std::uint64_t{1} << (32 - c.pool.length)) / 4;
  return static_cast<unsigned>(std::min<std::uint64_t>(n, 99999));
}

std::uint32_t slot_network(const EgressConfig& c, unsigned slot) { return c.pool.address + 4 * slot; }

std::string render_ruleset(const EgressConfig& c) {
  const std::string table = "inet " + egress_table_name(c.tag);
  const std::string links = "\"" + host_link_prefix(c.tag) + "*\"";
  const std::string pool = c.pool.to_string();
  std::ostringstream o;
  // Creating then deleting makes the load idempotent; the file is one transaction.
  o << "table " << table << "\n";
  o << "delete table " << table << "\n";
  o << "table " << table << " {\n";

  o << "  chain prerouting_raw {\n"
    << "    type filter hook prerouting priority raw; policy accept;\n"
    // A machine may only send from its own address (it cannot set another
    // one, but this does not depend on that).
    << "    iifname " << links << " fib saddr . iif oif missing drop\n"
    << "  }\n";

  o << "  chain prerouting_nat {\n"
    << "    type nat hook prerouting priority dstnat; policy accept;\n";
  if (c.dns_upstream) {
    for (const char* proto : {"udp", "tcp"})
      o << "    iifname " << links << " ip daddr " << ipv4_to_string(dns_address(c)) << " " << proto
        << " dport 53 dnat ip to " << ipv4_to_string(*c.dns_upstream) << ":53\n";
  }
  o << "  }\n";

  o << "  chain postrouting_nat {\n"
    << "    type nat hook postrouting priority srcnat; policy accept;\n"
    << "    ip saddr " << pool << " oifname != " << links << " masquerade\n"
    << "  }\n";

  o << "  chain forward {\n"
    << "    type filter hook forward priority filter; policy accept;\n"
    << "    iifname " << links << " jump from_machine\n"
    << "    oifname " << links << " ct state established,related accept\n"
    // Nothing opens a connection to a machine: not the network, not another session.
    << "    oifname " << links << " drop\n"
    << "  }\n";

  // Denials answer at once (ICMP administratively prohibited) rather than
  // drop: a page gets a prompt, clear network error instead of a timeout.
  const std::string deny = " reject with icmpx type admin-prohibited\n";
  o << "  chain from_machine {\n"
    << "    meta nfproto ipv6" << deny;
  if (c.dns_upstream) {
    for (const char* proto : {"udp", "tcp"})
      o << "    ct status dnat ip daddr " << ipv4_to_string(*c.dns_upstream) << " " << proto << " dport 53 accept\n";
  }
  // Other sessions, whatever an allow rule says.
  o << "    ip daddr " << pool << deny;
  for (const auto& rule : c.allow) {
    if (rule.port) {
      for (const char* proto : {"tcp", "udp"})
        o << "    ip daddr " << rule.prefix.to_string() << " " << proto << " dport " << *rule.port << " accept\n";
    } else {
      o << "    ip daddr " << rule.prefix.to_string() << " accept\n";
    }
  }
  o << "    ip daddr {";
  const auto& denied = denied_ipv4_ranges();
  for (std::size_t i = 0; i < denied.size(); ++i) o << (i ? ", " : " ") << denied[i].to_string();
  o << " }" << deny;
  o << "  }\n";

  // The host's own addresses, on any interface, are reached through input.
  o << "  chain input {\n"
    << "    type filter hook input priority filter; policy accept;\n";
  if (c.dns_upstream) {
    for (const char* proto : {"udp", "tcp"})
      o << "    iifname " << links << " ct status dnat ip daddr " << ipv4_to_string(*c.dns_upstream) << " " << proto
        << " dport 53 accept\n";
  }
  o << "    iifname " << links << deny << "  }\n";
  o << "}\n";
  return o.str();
}

std::optional<std::uint32_t> first_nameserver(const std::string& resolv_conf) {
  std::istringstream in(resolv_conf);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key, value;
    if (!(words >> key >> value) || key != "nameserver") continue;
    auto a = parse_ipv4(value);
    if (!a || (*a >> 24) == 127 || *a == 0) continue;
    return *a;
  }
  return std::nullopt;
}

}  // namespace kindling::node
