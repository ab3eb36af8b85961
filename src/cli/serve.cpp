#include "cli/serve.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <iostream>

#include "cli/image_root.hpp"
#include "common/log.hpp"
#include "common/secrets.hpp"
#include "control/api_keys.hpp"
#include "control/session_manager.hpp"
#include "control/session_store.hpp"
#include "gateway/gateway.hpp"
#include "image/image_build.hpp"
#include "node/machine_reaper.hpp"
#include "node/sandbox/sandbox_backend.hpp"
#include "node/standby_pool.hpp"

namespace kindling::cli {

namespace {

namespace fs = std::filesystem;

struct ServeOptions {
  std::string listen = "127.0.0.1:8600";
  std::string data_dir;
  std::string agent_path;
  std::string chromium_path = "/usr/lib/chromium/chromium";
  std::string public_url;
  std::string log_level = "info";
  std::string root;       // host | image (default: env KINDLING_ROOT, else image)
  std::string image_dir;  // image store or image directory
  int max_sessions = 16;
  int key_max_sessions = 0;
  double key_create_rate = 0;
  double key_create_burst = 0;
  int min_free_mib = 512;
  std::string profile_key_file;  // empty: profiles are stored unencrypted
  int profile_max_mib = 128;
  int default_timeout = 3600;
  int default_idle_timeout = 300;
  std::uint64_t memory_mib = 2048;
  int pool_min = 1;
  int pool_max = 4;
  int pool_max_age = 900;
  int pool_starts = 2;
  int pool_max_waiting = 32;
  std::string network = "nat";
  std::string network_pool = "10.200.0.0/16";
  std::string dns = "host";
  std::vector<std::string> allow;
};

// --network/--network-pool/--dns/--allow into the backend's egress config
// (docs/network.md); nullopt for --network none.
Result<std::optional<node::EgressConfig>> egress_config(const ServeOptions& o, const std::string& data_dir) {
  if (o.network == "none") return std::optional<node::EgressConfig>();
  if (o.network != "nat") return make_error("--network must be 'nat' or 'none', got '" + o.network + "'");
  node::EgressConfig c;
  c.tag = sha256_hex(data_dir).substr(0, 6);
  auto pool = node::parse_ipv4_prefix(o.network_pool);
  if (!pool) return make_error("--network-pool: " + pool.error().message);
  c.pool = *pool;
  if (o.dns == "host") {
    // The host's resolver; systemd-resolved's stub (127.0.0.53) is skipped
    // in favour of the upstreams it names.
    for (const char* path : {"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"}) {
      std::ifstream in(path);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (auto ns = node::first_nameserver(text)) {
        c.dns_upstream = *ns;
        break;
      }
    }
    if (!c.dns_upstream) spdlog::warn("network: no usable IPv4 nameserver on the host; machines get no DNS (--dns IP)");
  } else if (o.dns != "none") {
    auto ns = node::parse_ipv4(o.dns);
    if (!ns) return make_error("--dns must be 'host', 'none' or an IPv4 address: " + ns.error().message);
    // Machines reach their DNS upstream through NAT from their own network
    // namespace; the host's loopback (and these) cannot be such a target.
    std::uint32_t first = *ns >> 24;
    if (first == 127 || first == 0 || first >= 224)
      return make_error("--dns " + o.dns +
                        ": machines cannot reach a loopback, unspecified, multicast or broadcast address; give the "
                        "address of a resolver on a network interface, or 'host'");
    c.dns_upstream = *ns;
  }
  for (const auto& text : o.allow) {
    auto rule = node::parse_allow_rule(text);
    if (!rule) return make_error("--allow: " + rule.error().message);
    c.allow.push_back(*rule);
  }
  if (auto st = node::validate(c); !st) return st.error();
  return std::optional<node::EgressConfig>(std::move(c));
}

Result<std::pair<std::string, unsigned short>> parse_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return make_error("--listen must be ADDR:PORT, got '" + listen + "'");
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    std::size_t used = 0;
    port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1) port = -1;
  } catch (...) {
    port = -1;
  }
  if (port < 0 || port > 65535) return make_error("--listen port must be 0..65535, got '" + listen + "'");
  return std::make_pair(host, static_cast<unsigned short>(port));
}

int run_serve(const ServeOptions& o) {
  // A log reader that goes away (a closed pipe on stdout) must not kill the
  // server: it would die without tearing down its machines.
  ::signal(SIGPIPE, SIG_IGN);
  init_logging("kindling", o.log_level);
  if (o.pool_max > 0 && o.pool_min > o.pool_max) {
    std::cerr << "error: --pool-min (" << o.pool_min << ") is larger than --pool-max (" << o.pool_max << ")\n";
    return 2;
  }
  auto listen = parse_listen(o.listen);
  if (!listen) {
    std::cerr << "error: " << listen.error().message << "\n";
    return 2;
  }
  std::string data_dir = o.data_dir;
  if (data_dir.empty()) {
    const char* env = std::getenv("KINDLING_DATA_DIR");
    data_dir = env && *env ? env : "/var/lib/kindling";
  }
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) {
    std::cerr << "error: cannot create data directory " << data_dir << ": " << ec.message() << "\n";
    return 2;
  }
  data_dir = fs::canonical(data_dir).string();
  ::chmod(data_dir.c_str(), 0711);

  auto store = control::SessionStore::open(data_dir + "/kindling.db");
  if (!store) {
    std::cerr << "error: " << store.error().message << "\n";
    return 2;
  }
  const char* env_key = std::getenv("KINDLING_API_KEY");
  control::ApiKeys::Setup key_setup;
  auto keys = control::ApiKeys::setup(**store, data_dir, env_key ? env_key : "", &key_setup);
  if (!keys) {
    std::cerr << "error: " << keys.error().message << "\n";
    return 2;
  }

  node::SandboxConfig sandbox;
  std::string root = o.root;
  if (root.empty()) {
    const char* env = std::getenv("KINDLING_ROOT");
    // The image by default: machines run what was built and checked, not
    // whatever the host has installed. host is the development shortcut.
    root = env && *env ? env : "image";
  }
  if (root != "host" && root != "image") {
    std::cerr << "error: --root (or KINDLING_ROOT) must be host or image, got '" << root << "'\n";
    return 2;
  }
  // Image mode: the image is mounted once, read-only, for every machine of
  // this server, and unmounted when `mounted` goes out of scope at the end.
  std::optional<MountedImage> mounted;
  if (root == "image") {
    std::string dir = o.image_dir.empty() ? image::default_store_dir() : o.image_dir;
    auto m = mount_verified_image(dir, data_dir + "/image");
    if (!m) {
      std::cerr << "error: cannot use the guest image: " << m.error().message
                << "; or run with --root host to use the host's /usr\n";
      return 2;
    }
    mounted = std::move(m).value();
    use_image_root(sandbox, mounted->mount->path());
    // --agent still wins: a developer's agent bound over the image's one.
    if (!o.agent_path.empty()) sandbox.agent_path = o.agent_path;
  } else {
    sandbox.agent_path = find_agent(o.agent_path);
  }
  if (sandbox.agent_path.empty()) {
    std::cerr << "error: kindling-agent not found next to this binary; pass --agent PATH or set KINDLING_AGENT\n";
    return 2;
  }
  sandbox.state_dir = data_dir + "/machines";
  // Machines of this data directory live under their own cgroup parent, so a
  // server reclaiming its orphans never touches another server's machines.
  sandbox.cgroup_parent = "kindling-" + sha256_hex(data_dir).substr(0, 12);
  sandbox.chromium_path = o.chromium_path;
  auto egress = egress_config(o, data_dir);
  if (!egress) {
    std::cerr << "error: " << egress.error().message << "\n";
    return 2;
  }
  sandbox.network = *egress;
  auto backend = node::SandboxBackend::create(sandbox);
  if (!backend) {
    std::cerr << "error: sandbox backend unavailable: " << backend.error().message << "\n";
    return 2;
  }

  control::SessionLimits limits;
  limits.max_live_sessions = o.max_sessions;
  limits.min_available_memory_bytes = static_cast<std::uint64_t>(o.min_free_mib) << 20;
  limits.per_key.max_live_sessions = o.key_max_sessions;
  limits.per_key.creates_per_second = o.key_create_rate;
  limits.per_key.create_burst = o.key_create_burst;
  limits.default_timeout_seconds = o.default_timeout;
  limits.default_idle_timeout_seconds = o.default_idle_timeout;
  limits.machine.memory_limit_bytes = o.memory_mib << 20;

  boost::asio::io_context io(1);
  node::MachineReaper reaper(io);
  std::unique_ptr<node::StandbyPool> pool;
  if (o.pool_max > 0) {
    node::StandbyPoolConfig pool_config;
    pool_config.min_size = std::min(o.pool_min, o.pool_max);
    pool_config.max_size = o.pool_max;
    pool_config.max_age = std::chrono::seconds(o.pool_max_age);
    pool_config.max_concurrent_starts_waiting = o.pool_starts;
    pool_config.max_waiting = o.pool_max_waiting;
    pool_config.spec = limits.machine;
    pool_config.ready_timeout = std::chrono::seconds(limits.ready_timeout_seconds);
    pool = std::make_unique<node::StandbyPool>(io, **backend, reaper, pool_config);
  }
  control::SessionManager sessions(io, **store, **backend, reaper, pool.get(), limits);
  if (auto st = sessions.recover(); !st) {
    std::cerr << "error: cannot reconcile earlier sessions: " << st.error().message << "\n";
    return 2;
  }
  gateway::GatewayConfig gw_config;
  gw_config.listen_address = listen->first;
  gw_config.port = listen->second;
  gw_config.public_url = o.public_url;
  // URLs are built as base + "/v1/...": a trailing slash would double.
  while (!gw_config.public_url.empty() && gw_config.public_url.back() == '/') gw_config.public_url.pop_back();
  auto extensions = control::ExtensionStore::open(data_dir + "/extensions");
  if (!extensions) {
    std::cerr << "error: " << extensions.error().message << "\n";
    return 2;
  }
  std::optional<control::ProfileKey> profile_key;
  if (!o.profile_key_file.empty()) {
    auto key = control::read_profile_key_file(o.profile_key_file);
    if (!key) {
      std::cerr << "error: " << key.error().message << "\n";
      return 2;
    }
    profile_key = *key;
  }
  control::ProfileLimits profile_limits;
  profile_limits.max_total_bytes = static_cast<std::uint64_t>(o.profile_max_mib) << 20;
  auto profiles = control::ProfileStore::open(data_dir + "/profiles", profile_key, profile_limits);
  if (!profiles) {
    std::cerr << "error: " << profiles.error().message << "\n";
    return 2;
  }
  sessions.set_profile_store(&*profiles);
  gateway::Gateway gateway(io, sessions, *keys, gw_config);
  gateway.set_extension_store(&*extensions);
  gateway.set_profile_store(&*profiles);
  auto endpoint = gateway.listen();
  if (!endpoint) {
    std::cerr << "error: " << endpoint.error().message << "\n";
    return 2;
  }

  std::string host = endpoint->address().to_string();
  if (endpoint->address().is_v6()) host = "[" + host + "]";
  std::cout << "kindling serve: listening on http://" << host << ":" << endpoint->port() << "\n";
  std::cout << "  data dir:  " << data_dir << "\n";
  if (key_setup.from_environment)
    std::cout << "  API key:   from KINDLING_API_KEY\n";
  else
    std::cout << "  API key:   " << key_setup.key_file << (key_setup.generated ? " (new)" : "") << "\n";
  std::cout << "  backend:   sandbox (agent " << sandbox.agent_path << ")\n";
  if (sandbox.network)
    std::cout << "  network:   nat, pool " << sandbox.network->pool.to_string() << ", DNS "
              << (sandbox.network->dns_upstream ? node::ipv4_to_string(*sandbox.network->dns_upstream) : "off")
              << ", " << sandbox.network->allow.size() << " allow rules\n";
  else
    std::cout << "  network:   none (loopback only)\n";
  if (mounted)
    std::cout << "  root:      image " << mounted->dir << " (Chromium " << mounted->manifest.chromium_version
              << ", mounted at " << mounted->mount->path() << ")\n";
  else
    std::cout << "  root:      host directories (/usr, /lib, /etc...)\n";
  std::cout << "  profiles:  " << data_dir << "/profiles, "
            << (profiles->encrypts() ? "encrypted (AES-256-GCM)" : "not encrypted (no --profile-key-file)")
            << ", cap " << o.profile_max_mib << " MiB\n";
  if (pool)
    std::cout << "  pool:      " << pool->config().min_size << ".." << pool->config().max_size << " standby browsers\n";
  else
    std::cout << "  pool:      off (every start is cold)\n";
  std::cout << std::flush;
  if (pool) pool->start();

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: releasing every session and stopping", sig);
    gateway.stop();
    sessions.shutdown([&io] { io.stop(); });
  });
  io.run();
  if (mounted) {
    if (auto st = mounted->mount->unmount(); !st) spdlog::warn("{}", st.error().message);
  }
  spdlog::info("stopped");
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, std::shared_ptr<int> exit_code) {
  auto o = std::make_shared<ServeOptions>();
  auto* serve = app.add_subcommand("serve", "Run gateway and node in one process (the embedded default)");
  serve->add_option("--listen", o->listen, "Address and port of the API and CDP gateway")->capture_default_str();
  serve->add_option("--data-dir", o->data_dir, "State directory (env KINDLING_DATA_DIR, default /var/lib/kindling)");
  serve->add_option("--agent", o->agent_path, "Path of kindling-agent (env KINDLING_AGENT)");
  serve->add_option("--root", o->root,
                    "Machines' system root: image (the guest image, mounted read-only) or host (the host's /usr; "
                    "development). Env KINDLING_ROOT; default image")
      ->check(CLI::IsMember({"host", "image"}));
  serve->add_option("--image", o->image_dir,
                    "Image store or image directory for --root image (env KINDLING_IMAGE_DIR, default "
                    "/var/lib/kindling/images)");
  serve->add_option("--chromium", o->chromium_path, "Chromium binary inside the machine")->capture_default_str();
  serve->add_option("--public-url", o->public_url, "Base URL handed to clients (default: from the Host header)");
  serve->add_option("--max-sessions", o->max_sessions, "Live sessions this host accepts")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  serve->add_option("--key-max-sessions", o->key_max_sessions,
                    "Live sessions one API key may hold; past it, create answers 429 (0: no limit)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  serve->add_option("--key-create-rate", o->key_create_rate,
                    "Creates per second one API key may make; past it, 429 (0: no limit)")
      ->check(CLI::Range(0.0, 10000.0))
      ->capture_default_str();
  serve->add_option("--key-create-burst", o->key_create_burst,
                    "Creates one API key may make at once within its rate (default: the rate, at least 1)")
      ->check(CLI::Range(0.0, 10000.0));
  serve->add_option("--min-free-mib", o->min_free_mib,
                    "Host memory (MemAvailable) that must remain for a create to be accepted; below it, 503 (0: off)")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  serve->add_option("--default-timeout", o->default_timeout, "Default max lifetime (s)")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  serve->add_option("--default-idle-timeout", o->default_idle_timeout, "Default idle timeout (s)")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  serve->add_option("--memory-mib", o->memory_mib, "Memory limit per machine (MiB)")
      ->check(CLI::Range(256, 1 << 20))
      ->capture_default_str();
  serve->add_option("--pool-min", o->pool_min, "Standby browsers kept ready at least")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  serve->add_option("--pool-max", o->pool_max, "Standby browsers at most (0 disables the pool)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  serve->add_option("--pool-max-age", o->pool_max_age, "Seconds before a standby browser is replaced")
      ->check(CLI::Range(10, 86400))
      ->capture_default_str();
  serve->add_option("--pool-starts", o->pool_starts,
                    "Browser starts at once while creates wait for a standby (about one per core)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  serve->add_option("--pool-max-waiting", o->pool_max_waiting,
                    "Creates that may wait for a starting standby; past it, create answers 503")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  serve->add_option("--network", o->network,
                    "nat: each machine gets egress through NAT under the default-deny policy; none: loopback only")
      ->check(CLI::IsMember({"nat", "none"}))
      ->capture_default_str();
  serve->add_option("--network-pool", o->network_pool, "IPv4 range the machines' /30 links come from")
      ->capture_default_str();
  serve->add_option("--dns", o->dns, "Machines' DNS upstream: host (the host's resolv.conf), none, or an IPv4 address")
      ->capture_default_str();
  serve->add_option("--allow", o->allow,
                    "Let machines reach CIDR[:PORT] despite the default-deny policy (repeatable)")
      ->allow_extra_args(false);
  serve->add_option("--profile-key-file", o->profile_key_file,
                    "Encrypt saved profiles (AES-256-GCM) with the 32-byte key in this file (raw, or 64 hex digits)");
  serve->add_option("--profile-max-mib", o->profile_max_mib, "Size cap of one saved profile (MiB, uncompressed)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  serve->add_option("--log-level", o->log_level, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  serve->callback([o, exit_code] { *exit_code = run_serve(*o); });
}

}  // namespace kindling::cli
