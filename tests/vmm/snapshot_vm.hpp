// One kindling-vmm process driven over its API for the snapshot tests: its
// files (API socket, serial log, metrics) named after the VM in a TempDir,
// optionally run inside a network namespace (for a VMM that opens taps).
#pragma once

#include <nlohmann/json.hpp>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "vmm/snapshot/crc32.hpp"
#include "vmm_process.hpp"

namespace kindling::vmm::test {

// The `fault_message` of an API error reply (or what came back instead).
inline std::string fault_of(const HttpReply& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("fault_message") ? j["fault_message"].get<std::string>() : "<no fault_message: " + r.body + ">";
}

// Rewrite a snapshot file's checksums after a test edited it, so a check
// behind them (version, sizes, CPU, a record's fields) is what refuses it.
inline void fix_header_crc(std::string& s) {
  uint32_t crc = kindling::vmm::crc32(std::span(reinterpret_cast<const uint8_t*>(s.data()), 36));
  std::memcpy(s.data() + 36, &crc, 4);
}
inline void fix_body_crc(std::string& s) {
  uint32_t crc = kindling::vmm::crc32(std::span(reinterpret_cast<const uint8_t*>(s.data()) + 40, s.size() - 40));
  std::memcpy(s.data() + 24, &crc, 4);
  fix_header_crc(s);
}

struct SnapshotVm {
  SnapshotVm(const TempDir& dir, const std::string& name, const std::string& netns = "")
      : sock(dir.file(name + ".sock")), serial_path(dir.file(name + ".serial")), metrics_path(dir.file(name + ".metrics")),
        proc(netns.empty() ? vmm_binary() : "/usr/sbin/ip", netns.empty() ? args(name) : in_netns(netns, args(name)), dir),
        api(sock) {}
  HttpReply put(const std::string& path, const nlohmann::json& body) { return api.request("PUT", path, body.dump()); }
  HttpReply patch(const std::string& path, const nlohmann::json& body) { return api.request("PATCH", path, body.dump()); }
  nlohmann::json get(const std::string& path) { return nlohmann::json::parse(api.request("GET", path).body, nullptr, false); }
  std::string serial() const { return read_file(serial_path); }
  // PUT /snapshot/load; `extra_backend` adds mem_backend fields, `extra` top-level ones.
  HttpReply load(const std::string& snapshot, const std::string& mem, const std::string& backend, bool resume,
                 nlohmann::json extra_backend = nlohmann::json::object(), nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json mb = {{"backend_type", backend}, {"backend_path", mem}};
    mb.update(extra_backend);
    nlohmann::json body = {{"snapshot_path", snapshot}, {"mem_backend", mb}, {"resume_vm", resume}};
    body.update(extra);
    return put("/snapshot/load", body);
  }

  std::string sock, serial_path, metrics_path;
  VmmProcess proc;
  ApiClient api;

 private:
  std::vector<std::string> args(const std::string& name) const {
    return {"--api-sock", sock, "--serial-out", serial_path, "--metrics-path", metrics_path, "--id", name};
  }
  static std::vector<std::string> in_netns(const std::string& netns, std::vector<std::string> vmm_args) {
    std::vector<std::string> a = {"netns", "exec", netns, vmm_binary()};
    a.insert(a.end(), vmm_args.begin(), vmm_args.end());
    return a;
  }
};

}  // namespace kindling::vmm::test
