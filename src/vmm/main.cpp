// kindling-vmm: one process per microVM. Reads top-down: parse the command
// line, collect configuration (config file and/or API), then run one event
// loop until the guest ends the VM or a signal asks us to stop.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <optional>
#include <spdlog/spdlog.h>
#include <string>
#include <vector>

#include "common/log.hpp"
#include "common/unique_fd.hpp"
#include "vmm/api/api_server.hpp"
#include "vmm/boot/kernel_image.hpp"
#include "vmm/exit_code.hpp"
#include "vmm/metrics.hpp"
#include "vmm/seccomp_policy.hpp"
#include "vmm/vmm.hpp"

using namespace kindling;
using namespace kindling::vmm;

namespace {

struct CommandLine {
  std::string api_sock;
  std::string config_file;
  bool no_api = false;
  std::string id = "anonymous-instance";
  std::string level = "info";
  std::string log_path;
  std::string metrics_path;
  std::string serial_out;
  bool no_seccomp = false;
  bool no_ioeventfd = false;
};

// SIGTERM/SIGINT arrive through a signalfd so the loop handles them like any
// other event; blocked in every thread (vCPU threads inherit the mask).
UniqueFd block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return UniqueFd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
}

ExitCode run_event_loop(Vmm& vmm, ApiServer* api, int signal_fd) {
  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({signal_fd, POLLIN, 0});
    fds.push_back({vmm.exit_event_fd(), POLLIN, 0});
    if (api) {
      fds.push_back({api->listen_fd(), POLLIN, 0});
      for (int c : api->client_fds()) fds.push_back({c, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("poll failed: {}", std::strerror(errno));
      return ExitCode::kGenericError;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      [[maybe_unused]] ssize_t n = ::read(signal_fd, &si, sizeof(si));
      spdlog::info("stopping on signal {}", si.ssi_signo);
      return ExitCode::kOk;
    }
    if (fds[1].revents & POLLIN) {
      return vmm.guest_exit().value_or(ExitCode::kGenericError);
    }
    if (!api) continue;
    if (fds[2].revents & POLLIN) api->accept_clients();
    for (size_t i = 3; i < fds.size(); ++i) {
      if (fds[i].revents) api->service(fds[i].fd);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  VmmMetrics metrics;
  metrics.process_start_us = monotonic_us();
  metrics.process_start_unix_us = unix_time_us();

  CommandLine cl;
  CLI::App app{"kindling-vmm: a KVM microVM monitor with a Firecracker-compatible API"};
  app.add_option("--api-sock", cl.api_sock, "Unix socket for the HTTP API");
  app.add_option("--config-file", cl.config_file, "Firecracker-style JSON configuration; the VM starts at once");
  app.add_flag("--no-api", cl.no_api, "Do not serve the API (needs --config-file)");
  app.add_option("--id", cl.id, "Instance id, used in logs and GET /");
  app.add_option("--level", cl.level, "Log level: trace, debug, info, warn, error, off");
  app.add_option("--log-path", cl.log_path, "Write logs to this file instead of stderr");
  app.add_option("--metrics-path", cl.metrics_path, "Write metrics (JSON lines) to this file or FIFO");
  app.add_option("--serial-out", cl.serial_out, "Guest serial output to this file instead of stdout (as PUT /serial)");
  app.add_flag("--no-seccomp", cl.no_seccomp, "Do not install the seccomp filters (debugging only)");
  app.add_flag("--no-ioeventfd", cl.no_ioeventfd, "virtio notifications by MMIO exits even where KVM offers ioeventfd (testing)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : to_int(ExitCode::kArgParsing);
  }
  if (cl.no_api && cl.config_file.empty()) {
    std::fprintf(stderr, "kindling-vmm: --no-api needs --config-file\n");
    return to_int(ExitCode::kArgParsing);
  }
  if (!cl.no_api && cl.api_sock.empty()) {
    std::fprintf(stderr, "kindling-vmm: give --api-sock PATH, or --config-file FILE --no-api\n");
    return to_int(ExitCode::kArgParsing);
  }

  init_logging("kindling-vmm", cl.level);
  // UTC timestamps: local time would make a vCPU thread's first log line open
  // /etc/localtime, which its seccomp filter rightly forbids.
  // Every line names the VM (instance id), so logs of many VMs can be merged.
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %n[" + cl.id + "]: %v", spdlog::pattern_time_type::utc);
  UniqueFd signal_fd = block_stop_signals();

  Vmm::Options opts;
  opts.instance_id = cl.id;
  opts.metrics = &metrics;
  opts.use_ioeventfd = !cl.no_ioeventfd;
  if (!cl.no_seccomp) {
    opts.vcpu_thread_setup = [] {
      if (auto s = install_seccomp_filter(SeccompThread::kVcpu); !s) spdlog::error("vCPU seccomp: {}", s.error().message);
    };
    opts.device_thread_setup = [] {
      if (auto s = install_seccomp_filter(SeccompThread::kDevice); !s) spdlog::error("device seccomp: {}", s.error().message);
    };
  }
  Vmm vmm(opts);
  if (!cl.log_path.empty()) {
    LoggerConfig lc;
    lc.log_path = cl.log_path;
    lc.level = cl.level;
    lc.show_level = true;
    if (auto s = vmm.set_logger(lc); !s) {
      std::fprintf(stderr, "kindling-vmm: %s\n", s.error().message.c_str());
      return to_int(ExitCode::kBadConfiguration);
    }
  }
  if (!cl.metrics_path.empty()) {
    if (auto s = vmm.set_metrics({cl.metrics_path}); !s) {
      spdlog::error("{}", s.error().message);
      return to_int(ExitCode::kBadConfiguration);
    }
  }

  if (!cl.serial_out.empty()) {
    SerialConfig sc;
    sc.serial_out_path = cl.serial_out;
    if (auto s = vmm.set_serial(sc); !s) return to_int(ExitCode::kBadConfiguration);
  }

  std::optional<ApiServer> api;
  if (!cl.no_api) {
    auto server = ApiServer::bind(cl.api_sock, [&](const HttpRequest& req) {
      metrics.api_requests.fetch_add(1);
      ApiResponse r = handle_api_request(vmm, req);
      if (r.status >= 400) {
        metrics.api_errors.fetch_add(1);
        spdlog::warn("API {} {}: {}", req.method, req.path, r.body);
      } else {
        spdlog::debug("API {} {}: {}", req.method, req.path, r.status);
      }
      return r;
    });
    if (!server) {
      spdlog::error("{}", server.error().message);
      return to_int(ExitCode::kGenericError);
    }
    api.emplace(std::move(*server));
  }

  if (!cl.config_file.empty()) {
    auto text = read_file_bounded(cl.config_file, 1 << 20, "configuration");
    auto resources = text ? parse_config_file(*text) : Result<VmResources>(text.error());
    if (!resources) {
      spdlog::error("bad configuration: {}", resources.error().message);
      return to_int(ExitCode::kBadConfiguration);
    }
    if (auto s = vmm.apply_resources(std::move(*resources)); !s) {
      spdlog::error("bad configuration: {}", s.error().message);
      return to_int(ExitCode::kBadConfiguration);
    }
    if (auto s = vmm.instance_start(); !s) {
      spdlog::error("cannot start the microVM: {}", s.error().message);
      return to_int(ExitCode::kBadConfiguration);
    }
  }
  if (!cl.no_seccomp) {
    if (auto s = install_seccomp_filter(SeccompThread::kApi); !s) {
      spdlog::error("{}", s.error().message);
      return to_int(ExitCode::kGenericError);
    }
  }
  // Overlaps KVM's slow VM/PIT/memory-slot setup with API configuration. Only
  // now, so the worker thread inherits the API thread's seccomp filter.
  if (!vmm.started()) vmm.prepare_platform_ahead();
  metrics.mark(metrics.api_ready_us);
  spdlog::info("ready{}", api ? " on " + cl.api_sock : "");

  ExitCode code = run_event_loop(vmm, api ? &*api : nullptr, signal_fd.get());
  vmm.shutdown();
  spdlog::info("exiting with status {}", to_int(code));
  return to_int(code);
}
