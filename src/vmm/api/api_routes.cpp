#include "vmm/api/api_routes.hpp"

#include <fmt/format.h>

#include "vmm/logger.hpp"

namespace kindling::vmm {
namespace {

using nlohmann::json;

ApiResponse fault(const std::string& message) { return {400, fault_body(message)}; }
ApiResponse no_content() { return {204, {}}; }
// Replacing invalid UTF-8 (a path from the request line, a file name) keeps
// dump() from throwing on bytes the client chose.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
ApiResponse ok_json(const json& j) { return {200, dump(j)}; }
ApiResponse from_status(const Status& s) { return s ? no_content() : fault(s.error().message); }

// Parses a non-empty JSON body or returns the fault to send.
Result<json> body_json(const HttpRequest& req) {
  if (req.body.empty()) return make_error(fmt::format("Empty {} request.", req.method));
  return parse_json_body(req.body);
}

ApiResponse put_actions(Vmm& vmm, const json& j) {
  auto action = parse_action(j);
  if (!action) return fault(action.error().message);
  switch (*action) {
    case ActionType::kInstanceStart: return from_status(vmm.instance_start());
    case ActionType::kSendCtrlAltDel: return from_status(vmm.send_ctrl_alt_del());
    case ActionType::kFlushMetrics: return from_status(vmm.flush_metrics());
  }
  return fault("unknown action");
}

ApiResponse route(Vmm& vmm, const HttpRequest& req);

}  // namespace

std::string fault_body(std::string_view message) { return dump(json{{"fault_message", message}}); }

ApiResponse handle_api_request(Vmm& vmm, const HttpRequest& req) {
  // Nothing below should throw; if something does, the client gets a 500 and
  // the VMM keeps running instead of terminating.
  try {
    return route(vmm, req);
  } catch (const std::exception& e) {
    log_error("API {} {}: internal error: {}", req.method, req.path, e.what());
    return {500, fault_body("Internal error while handling the request.")};
  }
}

namespace {

ApiResponse route(Vmm& vmm, const HttpRequest& req) {
  const std::string& m = req.method;
  const std::string& p = req.path;

  if (m == "GET") {
    if (p == "/") return ok_json(vmm.instance_info());
    if (p == "/machine-config") return ok_json(vmm.vm_config()["machine-config"]);
    if (p == "/vm/config") return ok_json(vmm.vm_config());
    if (p == "/version") return ok_json({{"firecracker_version", kVmmVersion}, {"kindling_vmm_version", kVmmVersion}});
  } else if (m == "PUT" || m == "PATCH") {
    auto j = body_json(req);
    if (!j) return fault(j.error().message);
    if (m == "PUT") {
      if (p == "/boot-source") {
        auto c = parse_boot_source(*j);
        return c ? from_status(vmm.set_boot_source(std::move(*c))) : fault(c.error().message);
      }
      if (p == "/machine-config") {
        auto c = parse_machine_config(*j, nullptr);
        return c ? from_status(vmm.set_machine_config(std::move(*c))) : fault(c.error().message);
      }
      if (p == "/cpu-config") return from_status(vmm.set_cpu_config(req.body));
      if (p == "/actions") return put_actions(vmm, *j);
      if (p == "/logger") {
        auto c = parse_logger(*j);
        return c ? from_status(vmm.set_logger(*c)) : fault(c.error().message);
      }
      if (p == "/metrics") {
        auto c = parse_metrics(*j);
        return c ? from_status(vmm.set_metrics(*c)) : fault(c.error().message);
      }
      if (p == "/entropy") {
        auto c = parse_entropy(*j);
        return c ? from_status(vmm.set_entropy(std::move(*c))) : fault(c.error().message);
      }
      if (p == "/vsock") {
        auto c = parse_vsock(*j);
        return c ? from_status(vmm.set_vsock(std::move(*c))) : fault(c.error().message);
      }
      if (p.rfind("/network-interfaces/", 0) == 0) {
        std::string id = p.substr(20);
        if (id.empty()) return fault("Missing iface id in the path.");
        auto c = parse_network_interface(*j, id);
        return c ? from_status(vmm.set_network_interface(std::move(*c))) : fault(c.error().message);
      }
      if (p.rfind("/drives/", 0) == 0) {
        std::string id = p.substr(8);
        if (id.empty()) return fault("Missing drive id in the path.");
        auto c = parse_drive(*j, id);
        return c ? from_status(vmm.set_drive(std::move(*c))) : fault(c.error().message);
      }
      if (p == "/snapshot/create") {
        auto c = parse_snapshot_create(*j);
        return c ? from_status(vmm.snapshot_create(*c)) : fault(c.error().message);
      }
      if (p == "/snapshot/load") {
        auto c = parse_snapshot_load(*j);
        return c ? from_status(vmm.snapshot_load(*c)) : fault(c.error().message);
      }
      if (p == "/snapshot/hot-pages") {
        auto c = parse_hot_pages_save(*j);
        return c ? from_status(vmm.save_hot_pages(*c)) : fault(c.error().message);
      }
      if (p == "/serial") {
        auto c = parse_serial(*j);
        return c ? from_status(vmm.set_serial(std::move(*c))) : fault(c.error().message);
      }
    } else {
      if (p == "/machine-config") {
        MachineConfig current = vmm.machine_config();
        auto c = parse_machine_config(*j, &current);
        return c ? from_status(vmm.set_machine_config(std::move(*c))) : fault(c.error().message);
      }
      if (p == "/vm") {
        auto s = parse_vm_state(*j);
        if (!s) return fault(s.error().message);
        return from_status(*s == VmStateRequest::kPaused ? vmm.pause() : vmm.resume());
      }
    }
  }
  return fault(fmt::format("Invalid request method and/or path: {} {}.", m, p));
}

}  // namespace
}  // namespace kindling::vmm
