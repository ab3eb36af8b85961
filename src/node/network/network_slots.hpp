// Network slots for sandbox machines (docs/network.md). A slot is a network
// namespace owned by the host (so a machine's root has no CAP_NET_ADMIN in it
// and cannot change its own addresses or routes), holding `eth0`, one end of
// a veth pair whose other end `kn<tag>-<n>` is on the host, with a /30 from
// the pool and a default route to the host. Slots are made ahead of time and
// reused: a machine start only joins one. The nftables table of this server
// (NAT, DNS redirect, default-deny forward policy) is loaded when the slots
// are created and removed with them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "node/network/egress_policy.hpp"

namespace kindling::node {

struct NetworkCounters {
  std::uint64_t rx_bytes = 0;  // received by the machine
  std::uint64_t tx_bytes = 0;  // sent by the machine
};

class NetworkSlots {
 public:
  // Removes whatever an earlier process with the same tag left (links,
  // namespaces, table), loads the ruleset, enables IPv4 forwarding and makes
  // `prewarm_slots` slots.
  static Result<std::unique_ptr<NetworkSlots>> create(EgressConfig config);
  // Removes every slot and the table. Host links go first, so a machine that
  // somehow outlived its owner is cut off before its policy disappears.
  ~NetworkSlots();
  NetworkSlots(const NetworkSlots&) = delete;
  NetworkSlots& operator=(const NetworkSlots&) = delete;

  // Takes a free slot, making one if none is free (tens of milliseconds).
  Result<unsigned> acquire();
  // Back to the free list; its namespace is empty again once the machine's
  // processes are gone (the caller releases only after reaping).
  void release(unsigned slot);

  // Descriptor of the slot's network namespace (for setns before clone).
  int netns_fd(unsigned slot) const;
  std::uint32_t machine_address(unsigned slot) const { return slot_machine_address(config_, slot); }
  // The host link's counters, turned into the machine's point of view.
  NetworkCounters counters(unsigned slot) const;

  const EgressConfig& config() const { return config_; }
  std::size_t slot_count() const;
  std::size_t free_count() const;

 private:
  explicit NetworkSlots(EgressConfig config) : config_(std::move(config)) {}
  struct Slot {
    UniqueFd netns;
    UniqueFd claim;  // flock on <lock_dir>/<network address>
  };
  Status load_ruleset();
  // Makes slot `index` (already claimed); undoes its half-made state on failure.
  Status make_slot(unsigned index);
  void remove_slot_objects(unsigned index);
  Result<unsigned> make_any_slot();
  static void remove_leftovers(const std::string& tag, const std::string& ip, const std::string& nft);

  EgressConfig config_;
  std::string ip_;   // path of `ip`
  std::string nft_;  // path of `nft`
  mutable std::mutex mutex_;
  std::map<unsigned, Slot> slots_;
  std::vector<unsigned> free_;
  bool table_loaded_ = false;
};

}  // namespace kindling::node
