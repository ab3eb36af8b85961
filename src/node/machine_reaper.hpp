// Kills and reaps machines off the io thread: a machine's processes take
// a moment to die, and waiting for them must never stall the gateway.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <memory>

#include "node/machine.hpp"

namespace kindling::node {

class MachineReaper {
 public:
  explicit MachineReaper(boost::asio::io_context& io) : io_(io) {}
  ~MachineReaper() { pool_.join(); }

  // Kills the machine now; `done` runs on the io thread once it is reaped
  // and every resource it held is freed.
  void dispose(std::shared_ptr<Machine> machine, std::function<void(MachineExit)> done = {});

  std::size_t in_flight() const { return in_flight_; }

 private:
  boost::asio::io_context& io_;
  boost::asio::thread_pool pool_{2};
  std::size_t in_flight_ = 0;  // touched on the io thread only
};

}  // namespace kindling::node
