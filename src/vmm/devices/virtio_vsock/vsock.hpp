// virtio-vsock with Firecracker's host-side Unix-socket protocol:
//  - host to guest: a client connects to `uds_path`, writes "CONNECT <port>\n",
//    and once the guest accepts reads "OK <host_port>\n"; then the stream is raw;
//  - guest to host: a guest connection to port P reaches a listener at
//    `<uds_path>_<P>`.
// All socket I/O runs on the device thread, edge-triggered. Host-bound data
// the socket cannot take at once is buffered per connection, bounded by the
// credit we advertise (kBufAlloc); a guest that overruns it is reset. Data
// to the guest is read from the socket straight into its RX buffers and
// never beyond the credit the guest advertised.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <unordered_map>

#include "common/unique_fd.hpp"
#include "vmm/devices/event_loop.hpp"
#include "vmm/devices/virtio_mmio/virtio_device.hpp"
#include "vmm/devices/virtio_vsock/packet.hpp"

namespace kindling::vmm {

class VirtioVsock : public VirtioDeviceBase {
 public:
  static constexpr uint32_t kBufAlloc = 256 * 1024;
  static constexpr size_t kMaxConnections = 256;
  static constexpr size_t kMaxControlPackets = 512;
  static constexpr uint32_t kFirstHostPort = 1u << 30;

  // Binds and listens on `uds_path` (which must not exist yet, as in Firecracker).
  static Result<std::shared_ptr<VirtioVsock>> create(uint32_t guest_cid, std::string uds_path);
  ~VirtioVsock() override;

  uint32_t device_type() const override { return kVirtioVsock; }
  uint64_t device_features() const override { return kVirtioFVersion1 | kVirtioFEventIdx | kVirtioFIndirectDesc; }
  std::vector<uint16_t> queue_max_sizes() const override { return {256, 256, 256}; }  // rx, tx, event
  void read_config(uint64_t offset, std::span<uint8_t> data) const override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}
  Status start_backend(DeviceEventLoop& loop) override;
  uint32_t guest_cid() const { return guest_cid_; }
  const std::string& uds_path() const { return uds_path_; }

 protected:
  void process_queue(uint16_t queue_index) override;
  void on_reset() override;
  // A restored device has none of the guest's connections: it owes the
  // driver a TRANSPORT_RESET event so it drops them.
  void on_restore() override { reset_event_pending_ = true; }

 private:
  struct Connection {
    UniqueFd sock;
    uint32_t local_port = 0;  // the host side's port
    uint32_t peer_port = 0;   // the guest's port
    bool established = false;
    bool readable = false;            // edge-triggered: the socket may hold data
    bool host_eof = false;            // SHUTDOWN already sent to the guest
    bool guest_done_sending = false;  // guest sent SHUTDOWN(SEND)
    bool close_after_flush = false;   // guest closed; RST once pending_out is written
    uint32_t peer_buf_alloc = 0, peer_fwd_cnt = 0;
    uint32_t sent_to_guest = 0;  // our tx_cnt
    uint32_t fwd_cnt = 0;        // guest bytes written to the socket
    uint32_t fwd_cnt_advertised = 0;
    std::string pending_out;  // guest bytes the socket has not taken yet, <= kBufAlloc
  };
  struct PendingHost {
    UniqueFd sock;
    std::string line;
  };
  static uint64_t key(uint32_t local, uint32_t peer) { return uint64_t{local} << 32 | peer; }

  VirtioVsock(uint32_t guest_cid, std::string uds_path, UniqueFd listener);
  void on_listener();
  void on_socket(int fd, uint32_t events);
  void on_connect_line(int fd);
  void process_tx();
  void fill_rx();
  void handle_packet(const VsockPacket& p);
  void forward_to_host(Connection& c, const VsockPacket& p);
  void flush_pending(Connection& c);
  void close_connection(uint64_t k, bool send_rst);
  void enqueue(uint32_t local, uint32_t peer, uint16_t op, uint32_t flags, Connection* c);
  void maybe_credit_update(Connection& c);
  Connection* next_sendable();
  void send_reset_event();

  const uint32_t guest_cid_;
  const std::string uds_path_;
  UniqueFd listener_;
  DeviceEventLoop* loop_ = nullptr;
  std::map<uint64_t, Connection> conns_;
  std::unordered_map<int, uint64_t> by_fd_;
  std::map<int, PendingHost> pending_host_;
  std::deque<VsockHeader> control_;
  uint32_t next_host_port_ = kFirstHostPort;
  uint64_t rr_cursor_ = 0;
  bool tx_stalled_ = false;
  bool reset_event_pending_ = false;
};

}  // namespace kindling::vmm
