// kindling-vmm: one process per microVM. Reads top-down: parse the command
// line, collect configuration (config file and/or API), then run one event
// loop until the guest ends the VM or a signal asks us to stop.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.hpp"
#include "vmm/api/api_server.hpp"
#include "vmm/boot/kernel_image.hpp"
#include "vmm/command_line.hpp"
#include "vmm/exit_code.hpp"
#include "vmm/logger.hpp"
#include "vmm/metrics.hpp"
#include "vmm/seccomp_policy.hpp"
#include "vmm/vmm.hpp"

using namespace kindling;
using namespace kindling::vmm;

namespace {

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
      log_error("poll failed: {}", std::strerror(errno));
      return ExitCode::kGenericError;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      [[maybe_unused]] ssize_t n = ::read(signal_fd, &si, sizeof(si));
      log_info("stopping on signal {}", si.ssi_signo);
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

  auto parsed = parse_command_line(argc, argv);
  if (!parsed) {
    std::fprintf(stderr, "kindling-vmm: %s\nRun with --help for more information.\n", parsed.error().message.c_str());
    return to_int(ExitCode::kArgParsing);
  }
  const CommandLine& cl = *parsed;
  if (cl.help) {
    std::fputs(command_line_help(argv[0]).c_str(), stdout);
    return 0;
  }
  if (cl.no_api && cl.config_file.empty()) {
    std::fprintf(stderr, "kindling-vmm: --no-api needs --config-file\n");
    return to_int(ExitCode::kArgParsing);
  }
  if (!cl.no_api && cl.api_sock.empty()) {
    std::fprintf(stderr, "kindling-vmm: give --api-sock PATH, or --config-file FILE --no-api\n");
    return to_int(ExitCode::kArgParsing);
  }

  std::optional<LogLevel> level = parse_log_level(cl.level);
  if (!level) {
    std::fprintf(stderr, "kindling-vmm: --level %s: expected trace, debug, info, warn, error or off\n", cl.level.c_str());
    return to_int(ExitCode::kArgParsing);
  }
  // Every line names the VM (instance id), so logs of many VMs can be merged.
  LogSink stderr_sink;
  stderr_sink.instance_id = cl.id;
  if (auto s = configure_logging(stderr_sink, *level); !s) return to_int(ExitCode::kGenericError);
  UniqueFd signal_fd = block_stop_signals();

  Vmm::Options opts;
  opts.instance_id = cl.id;
  opts.metrics = &metrics;
  opts.use_ioeventfd = !cl.no_ioeventfd;
  if (!cl.no_seccomp) {
    opts.vcpu_thread_setup = [] {
      if (auto s = install_seccomp_filter(SeccompThread::kVcpu); !s) log_error("vCPU seccomp: {}", s.error().message);
    };
    opts.device_thread_setup = [] {
      if (auto s = install_seccomp_filter(SeccompThread::kDevice); !s) log_error("device seccomp: {}", s.error().message);
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
      log_error("{}", s.error().message);
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
        log_warn("API {} {}: {}", req.method, req.path, r.body);
      } else {
        log_debug("API {} {}: {}", req.method, req.path, r.status);
      }
      return r;
    });
    if (!server) {
      log_error("{}", server.error().message);
      return to_int(ExitCode::kGenericError);
    }
    api.emplace(std::move(*server));
  }

  if (!cl.config_file.empty()) {
    auto text = read_file_bounded(cl.config_file, 1 << 20, "configuration");
    auto resources = text ? parse_config_file(*text) : Result<VmResources>(text.error());
    if (!resources) {
      log_error("bad configuration: {}", resources.error().message);
      return to_int(ExitCode::kBadConfiguration);
    }
    if (auto s = vmm.apply_resources(std::move(*resources)); !s) {
      log_error("bad configuration: {}", s.error().message);
      return to_int(ExitCode::kBadConfiguration);
    }
    if (auto s = vmm.instance_start(); !s) {
      log_error("cannot start the microVM: {}", s.error().message);
      return to_int(ExitCode::kBadConfiguration);
    }
  }
  if (!cl.no_seccomp) {
    if (auto s = install_seccomp_filter(SeccompThread::kApi); !s) {
      log_error("{}", s.error().message);
      return to_int(ExitCode::kGenericError);
    }
  }
  // Overlaps KVM's slow VM/PIT/memory-slot setup with API configuration. Only
  // now, so the worker thread inherits the API thread's seccomp filter.
  if (!vmm.started()) vmm.prepare_platform_ahead();
  metrics.mark(metrics.api_ready_us);
  log_info("ready{}", api ? " on " + cl.api_sock : "");

  ExitCode code = run_event_loop(vmm, api ? &*api : nullptr, signal_fd.get());
  vmm.shutdown();
  log_info("exiting with status {}", to_int(code));
  return to_int(code);
}
