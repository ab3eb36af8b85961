#include "node/network/network_slots.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/log.hpp"
#include "node/network/host_command.hpp"

namespace kindling::node {

namespace {

namespace fs = std::filesystem;

constexpr const char* kNetnsDir = "/run/netns/";
constexpr int kMakeAttempts = 8;

// Whether any interface on the host holds an IPv4 address inside the /30 at
// `network` (host byte order). Linux lets two links carry addresses of one
// subnet, so making a slot over a leftover (another server's crash, or an
// operator's own network) would succeed and then route the machine's
// traffic into the leftover: such a /30 is skipped instead.
bool host_uses_slot_range(std::uint32_t network) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return false;
  bool used = false;
  for (ifaddrs* a = list; a && !used; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    std::uint32_t addr = ntohl(reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr);
    used = (addr & ~3u) == network;
  }
  ::freeifaddrs(list);
  return used;
}

std::vector<std::string> entries_with_prefix(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0) names.push_back(name);
  }
  return names;
}

std::uint64_t read_counter(const std::string& path) {
  std::ifstream in(path);
  std::uint64_t v = 0;
  in >> v;
  return v;
}

Status enable_ipv4_forwarding() {
  const char* path = "/proc/sys/net/ipv4/ip_forward";
  std::ifstream in(path);
  char current = '0';
  in >> current;
  if (current == '1') return ok_status();
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd.valid() || ::write(fd.get(), "1\n", 2) != 2)
    return make_error(std::string("cannot enable IPv4 forwarding (") + path + "): " + std::strerror(errno));
  spdlog::info("network: enabled IPv4 forwarding on the host (net.ipv4.ip_forward=1)");
  return ok_status();
}

}  // namespace

void NetworkSlots::remove_leftovers(const std::string& tag, const std::string& ip, const std::string& nft) {
  // Host links first: deleting one end of a veth removes both, which cuts
  // off any machine still running in a namespace.
  for (const auto& link : entries_with_prefix("/sys/class/net", host_link_prefix(tag))) {
    auto st = run_host_command({ip, "link", "del", link});
    if (!st) spdlog::warn("network: {}", st.error().message);
    else spdlog::info("network: removed leftover link {}", link);
  }
  for (const auto& ns : entries_with_prefix(kNetnsDir, netns_prefix(tag))) {
    auto st = run_host_command({ip, "netns", "del", ns});
    if (!st) spdlog::warn("network: {}", st.error().message);
    else spdlog::info("network: removed leftover namespace {}", ns);
  }
  (void)nft;
}

Result<std::unique_ptr<NetworkSlots>> NetworkSlots::create(EgressConfig config) {
  KINDLING_TRY(valid, validate(config));
  (void)valid;
  std::unique_ptr<NetworkSlots> slots(new NetworkSlots(std::move(config)));
  slots->ip_ = find_host_tool("ip");
  slots->nft_ = find_host_tool("nft");
  if (slots->ip_.empty()) return make_error("network: `ip` (Debian package iproute2) not found; or run with --network none");
  if (slots->nft_.empty()) return make_error("network: `nft` (Debian package nftables) not found; or run with --network none");
  std::error_code ec;
  fs::create_directories(slots->config_.lock_dir, ec);
  if (ec) return make_error("network: cannot create " + slots->config_.lock_dir + ": " + ec.message());

  remove_leftovers(slots->config_.tag, slots->ip_, slots->nft_);
  KINDLING_TRY(loaded, slots->load_ruleset());
  (void)loaded;
  KINDLING_TRY(forwarding, enable_ipv4_forwarding());
  (void)forwarding;
  for (unsigned i = 0; i < slots->config_.prewarm_slots; ++i) {
    KINDLING_TRY(made, slots->make_any_slot());
    std::lock_guard lock(slots->mutex_);
    slots->free_.push_back(made);
  }
  spdlog::info("network: pool {}, {} slots ready, DNS {}, {} allow rules", slots->config_.pool.to_string(),
               slots->config_.prewarm_slots,
               slots->config_.dns_upstream ? ipv4_to_string(*slots->config_.dns_upstream) : std::string("off"),
               slots->config_.allow.size());
  return slots;
}

Status NetworkSlots::load_ruleset() {
  auto st = run_host_command({nft_, "-f", "-"}, render_ruleset(config_));
  if (!st) return make_error("network: cannot load nftables rules: " + st.error().message);
  table_loaded_ = true;
  return ok_status();
}

NetworkSlots::~NetworkSlots() {
  std::lock_guard lock(mutex_);
  for (auto& [index, slot] : slots_) {
    slot.netns.reset();
    remove_slot_objects(index);
  }
  slots_.clear();  // closes the claims
  free_.clear();
  if (table_loaded_) {
    auto st = run_host_command({nft_, "delete", "table", "inet", egress_table_name(config_.tag)});
    if (!st) spdlog::warn("network: {}", st.error().message);
  }
  spdlog::info("network: slots and rules removed");
}

void NetworkSlots::remove_slot_objects(unsigned index) {
  const std::string link = host_link_name(config_.tag, index);
  if (fs::exists("/sys/class/net/" + link)) {
    auto st = run_host_command({ip_, "link", "del", link});
    if (!st) spdlog::warn("network: {}", st.error().message);
  }
  const std::string ns = netns_name(config_.tag, index);
  if (fs::exists(kNetnsDir + ns)) {
    auto st = run_host_command({ip_, "netns", "del", ns});
    if (!st) spdlog::warn("network: {}", st.error().message);
  }
}

Status NetworkSlots::make_slot(unsigned index) {
  const std::string ns = netns_name(config_.tag, index);
  const std::string link = host_link_name(config_.tag, index);
  const std::string host_addr = ipv4_to_string(slot_host_address(config_, index));
  const std::string machine_addr = ipv4_to_string(slot_machine_address(config_, index));
  // Every word below comes from the tag (validated hex), a slot number or an
  // address printed by ipv4_to_string: nothing a user or machine chose.
  std::string host_batch = "netns add " + ns + "\n" +
                           "link add " + link + " type veth peer name eth0 netns " + ns + "\n" +
                           "link set dev " + link + " addrgenmode none\n" +
                           "addr add " + host_addr + "/30 dev " + link + "\n" +
                           "link set dev " + link + " up\n";
  std::string ns_batch = "link set dev lo up\n"
                         "link set dev eth0 addrgenmode none\n"
                         "addr add " + machine_addr + "/30 dev eth0\n"
                         "link set dev eth0 up\n"
                         "route add default via " + host_addr + "\n";
  auto st = run_host_command({ip_, "-batch", "-"}, host_batch);
  if (st) st = run_host_command({ip_, "-n", ns, "-batch", "-"}, ns_batch);
  if (!st) {
    remove_slot_objects(index);
    return make_error("network slot " + std::to_string(index) + ": " + st.error().message);
  }
  UniqueFd fd(::open((kNetnsDir + ns).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    remove_slot_objects(index);
    return make_error("network slot " + std::to_string(index) + ": cannot open " + kNetnsDir + ns + ": " +
                      std::strerror(err));
  }
  std::lock_guard lock(mutex_);
  slots_[index].netns = std::move(fd);
  return ok_status();
}

Result<unsigned> NetworkSlots::make_any_slot() {
  const unsigned limit = max_slots(config_);
  std::string last_error = "every /30 of " + config_.pool.to_string() + " is in use";
  int attempts = 0;
  for (unsigned index = 1; index < limit && attempts < kMakeAttempts; ++index) {
    {
      std::lock_guard lock(mutex_);
      if (slots_.count(index)) continue;
    }
    // Host-wide claim: another server on this host may use the same pool.
    std::string path = config_.lock_dir + "/" + ipv4_to_string(slot_network(config_, index));
    UniqueFd claim(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!claim.valid()) return make_error("network: cannot open " + path + ": " + std::strerror(errno));
    if (::flock(claim.get(), LOCK_EX | LOCK_NB) != 0) continue;
    if (host_uses_slot_range(slot_network(config_, index))) {
      spdlog::warn("network slot {}: {}/30 is already on a host link (a leftover?); skipped", index,
                   ipv4_to_string(slot_network(config_, index)));
      continue;
    }
    ++attempts;
    auto st = make_slot(index);
    if (!st) {
      // Most likely a leftover of another server's crash holds the address.
      spdlog::warn("{}", st.error().message);
      last_error = st.error().message;
      continue;
    }
    std::lock_guard lock(mutex_);
    slots_[index].claim = std::move(claim);
    return index;
  }
  return make_error("network: no slot available: " + last_error, "exhausted");
}

Result<unsigned> NetworkSlots::acquire() {
  {
    std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      // Lowest first: keeps the set of slots in use small and stable.
      auto it = std::min_element(free_.begin(), free_.end());
      unsigned index = *it;
      free_.erase(it);
      return index;
    }
  }
  return make_any_slot();
}

void NetworkSlots::release(unsigned slot) {
  std::lock_guard lock(mutex_);
  if (!slots_.count(slot) || std::find(free_.begin(), free_.end(), slot) != free_.end()) return;
  free_.push_back(slot);
}

int NetworkSlots::netns_fd(unsigned slot) const {
  std::lock_guard lock(mutex_);
  auto it = slots_.find(slot);
  return it == slots_.end() ? -1 : it->second.netns.get();
}

NetworkCounters NetworkSlots::counters(unsigned slot) const {
  const std::string base = "/sys/class/net/" + host_link_name(config_.tag, slot) + "/statistics/";
  // What the host end receives, the machine sent.
  return {read_counter(base + "tx_bytes"), read_counter(base + "rx_bytes")};
}

std::size_t NetworkSlots::slot_count() const {
  std::lock_guard lock(mutex_);
  return slots_.size();
}

std::size_t NetworkSlots::free_count() const {
  std::lock_guard lock(mutex_);
  return free_.size();
}

}  // namespace kindling::node
