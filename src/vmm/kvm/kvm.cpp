#include "vmm/kvm/kvm.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "vmm/arch/x86/layout.hpp"
#include "vmm/kvm/kvm_abi.hpp"

namespace kindling::vmm {

Error ioctl_error(const char* what) { return make_error(fmt::format("{} failed: {}", what, std::strerror(errno))); }

Result<Kvm> Kvm::open(const char* path) {
  Kvm kvm;
  kvm.fd_.reset(::open(path, O_RDWR | O_CLOEXEC));
  if (!kvm.fd_.valid()) {
    return make_error(fmt::format("cannot open {}: {} (is KVM available and are you in the kvm group?)", path,
                                  std::strerror(errno)));
  }
  int version = ::ioctl(kvm.fd(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) return make_error(fmt::format("unsupported KVM API version {}", version));
  for (long cap : {KVM_CAP_IRQCHIP, KVM_CAP_USER_MEMORY, KVM_CAP_SET_TSS_ADDR, KVM_CAP_EXT_CPUID, KVM_CAP_IMMEDIATE_EXIT}) {
    if (!kvm.has_cap(cap)) return make_error(fmt::format("KVM lacks required capability {}", cap));
  }
  kvm.vcpu_mmap_size_ = ::ioctl(kvm.fd(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (kvm.vcpu_mmap_size_ <= 0) return ioctl_error("KVM_GET_VCPU_MMAP_SIZE");
  return kvm;
}

bool Kvm::has_cap(long cap) const { return ::ioctl(fd(), KVM_CHECK_EXTENSION, cap) > 0; }

Result<std::vector<kvm_cpuid_entry2>> Kvm::supported_cpuid() const {
  for (uint32_t n = 64; n <= 4096; n *= 2) {
    size_t bytes = sizeof(kvm_abi::CpuidHeader) + n * sizeof(kvm_cpuid_entry2);
    std::unique_ptr<uint8_t[]> buf(new uint8_t[bytes]());
    auto* header = reinterpret_cast<kvm_abi::CpuidHeader*>(buf.get());
    header->nent = n;
    if (::ioctl(fd(), kvm_abi::kGetSupportedCpuid, buf.get()) == 0) {
      std::vector<kvm_cpuid_entry2> out(header->nent);
      std::memcpy(out.data(), buf.get() + sizeof(*header), out.size() * sizeof(kvm_cpuid_entry2));
      return out;
    }
    if (errno != E2BIG) return ioctl_error("KVM_GET_SUPPORTED_CPUID");
  }
  return make_error("KVM_GET_SUPPORTED_CPUID: too many entries");
}

Result<std::vector<uint32_t>> Kvm::msr_index_list() const {
  kvm_abi::MsrListHeader probe{};
  ::ioctl(fd(), kvm_abi::kGetMsrIndexList, &probe);  // E2BIG, fills nmsrs
  std::unique_ptr<uint8_t[]> buf(new uint8_t[sizeof(probe) + probe.nmsrs * sizeof(uint32_t)]());
  auto* header = reinterpret_cast<kvm_abi::MsrListHeader*>(buf.get());
  header->nmsrs = probe.nmsrs;
  if (::ioctl(fd(), kvm_abi::kGetMsrIndexList, buf.get()) != 0) return ioctl_error("KVM_GET_MSR_INDEX_LIST");
  std::vector<uint32_t> out(header->nmsrs);
  std::memcpy(out.data(), buf.get() + sizeof(*header), out.size() * sizeof(uint32_t));
  return out;
}

Result<KvmVm> KvmVm::create(const Kvm& kvm) {
  KvmVm vm;
  int fd = ::ioctl(kvm.fd(), KVM_CREATE_VM, 0);
  if (fd < 0) return ioctl_error("KVM_CREATE_VM");
  vm.fd_.reset(fd);
  return vm;
}

Status KvmVm::setup_platform() {
  if (::ioctl(fd(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(layout::kKvmTssAddr)) != 0) return ioctl_error("KVM_SET_TSS_ADDR");
  uint64_t identity = layout::kKvmIdentityMapAddr;
  if (::ioctl(fd(), KVM_SET_IDENTITY_MAP_ADDR, &identity) != 0) return ioctl_error("KVM_SET_IDENTITY_MAP_ADDR");
  if (::ioctl(fd(), KVM_CREATE_IRQCHIP, 0) != 0) return ioctl_error("KVM_CREATE_IRQCHIP");
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;
  if (::ioctl(fd(), KVM_CREATE_PIT2, &pit) != 0) return ioctl_error("KVM_CREATE_PIT2");
  return ok_status();
}

Status KvmVm::map_memory(const GuestMemory& memory) {
  uint32_t slot = 0;
  for (const auto& r : memory.regions()) {
    kvm_userspace_memory_region region{};
    region.slot = slot++;
    region.guest_phys_addr = r.guest_addr;
    region.memory_size = r.size;
    region.userspace_addr = reinterpret_cast<uint64_t>(r.host);
    if (::ioctl(fd(), KVM_SET_USER_MEMORY_REGION, &region) != 0) return ioctl_error("KVM_SET_USER_MEMORY_REGION");
  }
  return ok_status();
}

Status KvmVm::set_irq_line(uint32_t irq, bool level) {
  kvm_irq_level l{};
  l.irq = irq;
  l.level = level ? 1 : 0;
  if (::ioctl(fd(), KVM_IRQ_LINE, &l) != 0) return ioctl_error("KVM_IRQ_LINE");
  return ok_status();
}

Result<UniqueFd> KvmVm::register_irqfd(uint32_t gsi) {
  UniqueFd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!efd.valid()) return ioctl_error("eventfd");
  kvm_irqfd req{};
  req.fd = static_cast<uint32_t>(efd.get());
  req.gsi = gsi;
  if (::ioctl(fd(), KVM_IRQFD, &req) != 0) return ioctl_error("KVM_IRQFD");
  return efd;
}

Status KvmVm::register_ioeventfd(uint64_t addr, uint32_t len, uint64_t datamatch, int fd) {
  kvm_ioeventfd req{};
  req.datamatch = datamatch;
  req.addr = addr;
  req.len = len;
  req.fd = fd;
  req.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
  if (::ioctl(fd_.get(), KVM_IOEVENTFD, &req) != 0) return ioctl_error("KVM_IOEVENTFD");
  return ok_status();
}

}  // namespace kindling::vmm
