#include "node/machine_reaper.hpp"

#include <boost/asio/post.hpp>

namespace kindling::node {

void MachineReaper::dispose(std::shared_ptr<Machine> machine, std::function<void(MachineExit)> done) {
  machine->kill();
  ++in_flight_;
  boost::asio::post(pool_, [this, machine, done = std::move(done)]() mutable {
    MachineExit how = machine->reap();
    boost::asio::post(io_, [this, machine = std::move(machine), how, done = std::move(done)]() mutable {
      --in_flight_;
      machine.reset();
      if (done) done(how);
    });
  });
}

}  // namespace kindling::node
