// Serves guest memory from a snapshot's memory file on first touch, through
// userfaultfd, on a thread of its own (in-process, simpler than Firecracker's
// external handler and no socket protocol to secure). Granularity is the
// mapping's page size: 4 KiB for anonymous memory, 2 MiB for hugetlbfs.
// A hot-page list is copied in first, between faults, so pages a restore is
// known to need are there before the guest asks; a record mode logs the
// pages faulted in, in order, to build that list.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "vmm/metrics.hpp"

namespace kindling::vmm {

struct UffdOptions {
  uint64_t page_size = 4096;
  std::vector<uint64_t> prefetch_pages;  // page indices (offset / page_size)
  bool record = false;
  // Called once if the memory file cannot serve a fault (unreadable,
  // truncated): the VM must end, since the guest cannot go on without that page.
  std::function<void(const std::string&)> on_fatal;
};

class UffdHandler {
 public:
  // Registers [base, base+size) and starts the thread. `mem_file` is the
  // snapshot's memory file, read with pread at the page's offset.
  static Result<std::unique_ptr<UffdHandler>> start(uint8_t* base, uint64_t size, UniqueFd mem_file, UffdOptions opts,
                                                   VmmMetrics& metrics);
  ~UffdHandler();

  // Starts copying the hot list in. Called once the vCPUs run: prefetching
  // earlier contends with the restore itself (each UFFDIO_COPY takes the
  // mmap lock that creating vCPUs and memory slots need), which measurably
  // delayed load-to-running (bench/vmm/results-snapshot.md).
  void start_prefetch();

  // Record mode: the pages faulted in so far, first touch first.
  std::vector<uint64_t> recorded_pages() const;

 private:
  UffdHandler(VmmMetrics& m) : metrics_(m) {}
  void thread_main();
  bool serve_fault(uint64_t addr);  // false: fatal
  void copy_page(uint64_t page, bool zero);
  void fatal(const std::string& why);

  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  UffdOptions opts_;
  VmmMetrics& metrics_;
  UniqueFd uffd_, mem_file_, stop_fd_, go_fd_;
  bool prefetch_go_ = false;  // handler thread only
  std::vector<uint8_t> removed_;  // per page: the guest gave it back, so it reads as zeros now
  std::unique_ptr<uint8_t[]> buf_;
  // Zeros for UFFDIO_COPY: a read-only anonymous mapping reads as the
  // kernel's zero page, so it costs nothing to set up. (A zero-filled 2 MiB
  // heap buffer cost ~1.5 ms of page faults per restore under nested KVM.)
  struct ZeroPages {
    void* p = nullptr;
    size_t len = 0;
    ~ZeroPages();
  } zeros_;
  std::thread thread_;
  bool fatal_ = false;
  mutable std::mutex record_mu_;
  std::vector<uint64_t> recorded_;
};

// Hot-page list files: one decimal page index per line, at most one per page.
Result<std::vector<uint64_t>> read_hot_pages(const std::string& path, uint64_t page_count);
Status write_hot_pages(const std::string& path, const std::vector<uint64_t>& pages);

}  // namespace kindling::vmm
