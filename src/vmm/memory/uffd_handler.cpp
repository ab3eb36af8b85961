#include "vmm/memory/uffd_handler.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmm/logger.hpp"

namespace kindling::vmm {
namespace {

Error sys_error(const std::string& what) { return make_error(fmt::format("{}: {}", what, std::strerror(errno))); }

}  // namespace

Result<std::unique_ptr<UffdHandler>> UffdHandler::start(uint8_t* base, uint64_t size, UniqueFd mem_file, UffdOptions opts,
                                                         VmmMetrics& metrics) {
  if (opts.page_size == 0 || size % opts.page_size != 0) return make_error("guest memory is not a whole number of pages");
  std::unique_ptr<UffdHandler> h(new UffdHandler(metrics));
  h->base_ = base;
  h->size_ = size;
  h->opts_ = std::move(opts);
  h->mem_file_ = std::move(mem_file);
  // Without UFFD_USER_MODE_ONLY: the faults come from KVM (kernel mode) as it
  // maps guest pages; that needs root or CAP_SYS_PTRACE.
  h->uffd_.reset(static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
  if (!h->uffd_.valid()) return sys_error("userfaultfd (needs CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1)");
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_EVENT_REMOVE;
  if (::ioctl(h->uffd_.get(), UFFDIO_API, &api) != 0) return sys_error("UFFDIO_API");
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<uint64_t>(base);
  reg.range.len = size;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (::ioctl(h->uffd_.get(), UFFDIO_REGISTER, &reg) != 0) return sys_error("UFFDIO_REGISTER of guest memory");
  if (!(reg.ioctls & (1ull << _UFFDIO_COPY))) return make_error("userfaultfd cannot UFFDIO_COPY into guest memory");
  h->stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  h->go_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!h->stop_fd_.valid() || !h->go_fd_.valid()) return sys_error("eventfd");
  h->removed_.assign(size / h->opts_.page_size, 0);
  h->buf_.reset(new uint8_t[h->opts_.page_size]);
  h->zeros_.p = ::mmap(nullptr, h->opts_.page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (h->zeros_.p == MAP_FAILED) {
    h->zeros_.p = nullptr;
    return sys_error("mmap of the zero-page source");
  }
  h->zeros_.len = h->opts_.page_size;
  try {
    h->thread_ = std::thread([p = h.get()] { p->thread_main(); });
  } catch (const std::system_error& e) {
    return make_error(fmt::format("cannot start the userfaultfd thread: {}", e.what()));
  }
  return h;
}

UffdHandler::ZeroPages::~ZeroPages() {
  if (p) ::munmap(p, len);
}

UffdHandler::~UffdHandler() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_fd_.get(), &one, sizeof(one));
    thread_.join();
  }
}

void UffdHandler::start_prefetch() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(go_fd_.get(), &one, sizeof(one));
}

std::vector<uint64_t> UffdHandler::recorded_pages() const {
  std::lock_guard lock(record_mu_);
  return recorded_;
}

void UffdHandler::fatal(const std::string& why) {
  if (fatal_) return;
  fatal_ = true;
  log_error("userfaultfd: {}", why);
  if (opts_.on_fatal) opts_.on_fatal(why);
}

void UffdHandler::copy_page(uint64_t page, bool zero) {
  uffdio_copy copy{};
  copy.dst = reinterpret_cast<uint64_t>(base_) + page * opts_.page_size;
  copy.src = reinterpret_cast<uint64_t>(zero ? zeros_.p : buf_.get());
  copy.len = opts_.page_size;
  // EEXIST: the page is there already (prefetched, or a second vCPU's fault
  // on it raced ours); either way the faulting thread is woken.
  if (::ioctl(uffd_.get(), UFFDIO_COPY, &copy) != 0 && errno != EEXIST) {
    log_warn("userfaultfd: UFFDIO_COPY of page {} failed: {}", page, std::strerror(errno));
  }
}

bool UffdHandler::serve_fault(uint64_t addr) {
  const uint64_t page = (addr - reinterpret_cast<uint64_t>(base_)) / opts_.page_size;
  if (page >= removed_.size()) return true;
  if (fatal_ || removed_[page]) {
    // A removed page reads as zeros (the guest gave it back, as after a
    // balloon inflate); after a fatal error zeros only unblock vCPUs that are
    // being stopped anyway.
    copy_page(page, true);
    return !fatal_;
  }
  const off_t offset = static_cast<off_t>(page * opts_.page_size);
  uint64_t got = 0;
  while (got < opts_.page_size) {
    ssize_t n = ::pread(mem_file_.get(), buf_.get() + got, opts_.page_size - got, offset + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fatal(n == 0 ? fmt::format("the memory file ends before guest page {} (offset {:#x}): truncated after load?", page, offset)
                   : fmt::format("cannot read guest page {} from the memory file: {}", page, std::strerror(errno)));
      copy_page(page, true);
      return false;
    }
    got += static_cast<uint64_t>(n);
  }
  // Counted and recorded before the copy wakes the faulting thread, so what
  // it (or a metrics flush it triggers) sees already includes this page.
  metrics_.uffd_bytes_read.fetch_add(opts_.page_size, std::memory_order_relaxed);
  if (opts_.record) {
    std::lock_guard lock(record_mu_);
    recorded_.push_back(page);
  }
  copy_page(page, false);
  return true;
}

void UffdHandler::thread_main() {
  pthread_setname_np(pthread_self(), "uffd");
  // Fault the copy buffer in now, while the restore is still setting up
  // vCPUs, rather than on the guest's first fault (512 page faults for a
  // 2 MiB buffer).
  std::memset(buf_.get(), 0, opts_.page_size);
  size_t next_prefetch = 0;
  for (;;) {
    // Prefetching goes on only while no fault waits: a vCPU is never kept
    // waiting behind the hot list.
    const bool prefetching = prefetch_go_ && next_prefetch < opts_.prefetch_pages.size() && !fatal_;
    pollfd fds[3] = {{uffd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}, {go_fd_.get(), POLLIN, 0}};
    int r = ::poll(fds, prefetch_go_ ? 2 : 3, prefetching ? 0 : -1);
    if (r < 0 && errno != EINTR) {
      fatal(fmt::format("poll: {}", std::strerror(errno)));
      return;
    }
    if (fds[1].revents) return;
    if (!prefetch_go_ && fds[2].revents) {
      prefetch_go_ = true;
      continue;
    }
    if (r == 0 && prefetching) {
      const int64_t t0 = monotonic_us();
      uint64_t page = opts_.prefetch_pages[next_prefetch++];
      if (page < removed_.size()) {
        ssize_t n = ::pread(mem_file_.get(), buf_.get(), opts_.page_size, static_cast<off_t>(page * opts_.page_size));
        if (n == static_cast<ssize_t>(opts_.page_size)) {
          copy_page(page, false);
          metrics_.uffd_prefetched_pages.fetch_add(1, std::memory_order_relaxed);
          metrics_.uffd_bytes_read.fetch_add(opts_.page_size, std::memory_order_relaxed);
        }
      }
      metrics_.uffd_handler_us.fetch_add(static_cast<uint64_t>(monotonic_us() - t0), std::memory_order_relaxed);
      continue;
    }
    if (!(fds[0].revents & POLLIN)) continue;
    uffd_msg msg{};
    ssize_t n = ::read(uffd_.get(), &msg, sizeof(msg));
    if (n != sizeof(msg)) continue;  // EAGAIN: another wakeup took it
    const int64_t t0 = monotonic_us();
    if (msg.event == UFFD_EVENT_PAGEFAULT) {
      metrics_.uffd_faults.fetch_add(1, std::memory_order_relaxed);
      serve_fault(msg.arg.pagefault.address);
    } else if (msg.event == UFFD_EVENT_REMOVE) {
      metrics_.uffd_removes.fetch_add(1, std::memory_order_relaxed);
      const uint64_t b = reinterpret_cast<uint64_t>(base_);
      const uint64_t start = msg.arg.remove.start < b ? 0 : (msg.arg.remove.start - b) / opts_.page_size;
      const uint64_t end = msg.arg.remove.end < b ? 0 : (msg.arg.remove.end - b + opts_.page_size - 1) / opts_.page_size;
      for (uint64_t p = start; p < end && p < removed_.size(); ++p) removed_[p] = 1;
    }
    metrics_.uffd_handler_us.fetch_add(static_cast<uint64_t>(monotonic_us() - t0), std::memory_order_relaxed);
  }
}

Result<std::vector<uint64_t>> read_hot_pages(const std::string& path, uint64_t page_count) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return make_error(fmt::format("Cannot open the hot-page list: {} ({})", std::strerror(errno), path));
  // At most one line of up to 20 digits per guest page.
  const uint64_t max_bytes = page_count * 21;
  std::string text;
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), chunk, sizeof(chunk));
    if (n < 0) return make_error(fmt::format("Cannot read the hot-page list: {} ({})", std::strerror(errno), path));
    if (n == 0) break;
    text.append(chunk, static_cast<size_t>(n));
    if (text.size() > max_bytes) return make_error(fmt::format("The hot-page list is longer than one entry per guest page ({})", path));
  }
  std::vector<uint64_t> pages;
  uint64_t v = 0;
  bool digits = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      if (v > (UINT64_MAX - 9) / 10) return make_error("The hot-page list has an entry out of range.");
      v = v * 10 + static_cast<uint64_t>(c - '0');
      digits = true;
    } else if (c == '\n' && digits) {
      if (v >= page_count) return make_error(fmt::format("The hot-page list names page {}; guest memory has {}.", v, page_count));
      pages.push_back(v);
      v = 0;
      digits = false;
    } else {
      return make_error("The hot-page list is malformed: one decimal page index per line expected.");
    }
  }
  if (digits) return make_error("The hot-page list is malformed: the last line has no newline (truncated?).");
  return pages;
}

Status write_hot_pages(const std::string& path, const std::vector<uint64_t>& pages) {
  std::string text;
  for (uint64_t p : pages) text += fmt::format("{}\n", p);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return make_error(fmt::format("Cannot create the hot-page list: {} ({})", std::strerror(errno), path));
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) return make_error("Cannot write the hot-page list.");
  return ok_status();
}

}  // namespace kindling::vmm
