#include "vmm/devices/virtio_rng/entropy.hpp"

#include <sys/random.h>

#include <cerrno>

namespace kindling::vmm {
namespace {

bool fill_random(uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t got = ::getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

}  // namespace

void VirtioEntropy::process_queue(uint16_t queue_index) {
  if (queue_index != 0) return;
  Virtqueue& q = queues_[0];
  for (;;) {
    DescriptorChain chain;
    if (deferred_) {
      chain = std::move(*deferred_);
      deferred_.reset();
    } else {
      auto next = q.pop();
      if (!next) {
        fail(next.error().message);
        return;
      }
      if (!*next) break;
      chain = std::move(**next);
    }
    const uint64_t want = std::min<uint64_t>(chain.writable_bytes, kMaxBytesPerRequest);
    if (admit_ && want > 0 && !admit_(want)) {
      deferred_ = std::move(chain);  // the limiter's timer calls retry()
      break;
    }
    uint64_t written = 0;
    for (const GuestBuffer& b : chain.writable) {
      const uint64_t n = std::min<uint64_t>(b.len, want - written);
      if (n == 0) break;
      auto dst = mem_->slice(b.addr, n);  // checked by the walker; re-checked here for free
      if (!dst || !fill_random(dst->data(), n)) {
        fail("cannot fill an entropy buffer");
        return;
      }
      written += n;
    }
    bytes_served_ += written;
    if (auto s = q.add_used(chain.head, static_cast<uint32_t>(written)); !s) {
      fail(s.error().message);
      return;
    }
  }
  interrupt_if_needed(0);
}

}  // namespace kindling::vmm
