// The egress network of sandbox machines (docs/network.md): the address pool
// the per-machine /30 links come from, the DNS upstream, the operator's allow
// rules, and the nftables ruleset that enforces the default-deny policy.
// Everything here is pure (no syscalls), so it is unit-tested and the text
// handed to `nft -f -` is built only from values parsed and re-printed here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace kindling::node {

// An IPv4 prefix, host byte order; `address` has no bits below the prefix.
struct Ipv4Prefix {
  std::uint32_t address = 0;
  int length = 32;
  bool contains(std::uint32_t a) const;
  std::string to_string() const;  // "10.200.0.0/16"
};

std::string ipv4_to_string(std::uint32_t address);
// Strict dotted quad: four decimal parts 0..255, no leading zeros, nothing else.
Result<std::uint32_t> parse_ipv4(const std::string& text);
// "A.B.C.D/N" or "A.B.C.D" (/32); host bits must be zero.
Result<Ipv4Prefix> parse_ipv4_prefix(const std::string& text);

// An operator exception to the deny list: `CIDR` or `CIDR:PORT` (TCP and UDP).
struct AllowRule {
  Ipv4Prefix prefix;
  std::optional<std::uint16_t> port;
  std::string to_string() const;  // canonical form, as parsed
};
Result<AllowRule> parse_allow_rule(const std::string& text);

struct EgressConfig {
  // Each machine gets the /30 at pool + 4*slot (slot >= 1): host end .1,
  // machine end .2. The pool's first address is the machines' DNS address.
  Ipv4Prefix pool{0x0AC80000u, 16};  // 10.200.0.0/16
  // Where machines' DNS queries (to the pool's first address) are sent.
  // Unset: no DNS for machines.
  std::optional<std::uint32_t> dns_upstream;
  std::vector<AllowRule> allow;
  // Names this server's links, namespaces and nftables table apart from
  // another server's on the same host: [0-9a-f]{6}.
  std::string tag;
  // Host-wide claims on /30s (one lock file per /30), shared by every server.
  std::string lock_dir = "/run/kindling/net-slots";
  // Slots made when the backend starts; more are made on demand and kept.
  unsigned prewarm_slots = 2;
};

Status validate(const EgressConfig& config);

// Destinations no machine may reach unless an allow rule says otherwise.
const std::vector<Ipv4Prefix>& denied_ipv4_ranges();

// Names derived from the tag.
std::string egress_table_name(const std::string& tag);   // kindling_<tag>
std::string host_link_name(const std::string& tag, unsigned slot);  // kn<tag>-<slot> (<= 15 chars)
std::string host_link_prefix(const std::string& tag);    // kn<tag>-
std::string netns_name(const std::string& tag, unsigned slot);      // kindling-<tag>-<slot>
std::string netns_prefix(const std::string& tag);        // kindling-<tag>-

// Addresses of a slot; slot 0 is the DNS address's /30 and never handed out.
unsigned max_slots(const EgressConfig& config);
std::uint32_t slot_network(const EgressConfig& config, unsigned slot);
inline std::uint32_t slot_host_address(const EgressConfig& c, unsigned slot) { return slot_network(c, slot) + 1; }
inline std::uint32_t slot_machine_address(const EgressConfig& c, unsigned slot) { return slot_network(c, slot) + 2; }
inline std::uint32_t dns_address(const EgressConfig& c) { return c.pool.address + 1; }

// The whole table, for `nft -f -` (it first deletes any table of the same name).
std::string render_ruleset(const EgressConfig& config);

// The first usable IPv4 nameserver of a resolv.conf text (loopback ones are
// skipped: a machine cannot be sent to the host's loopback).
std::optional<std::uint32_t> first_nameserver(const std::string& resolv_conf);

}  // namespace kindling::node
