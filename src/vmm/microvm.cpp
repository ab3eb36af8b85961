#include "vmm/microvm.hpp"

#include <unistd.h>

#include <thread>

#include "vmm/arch/x86/cpuid.hpp"
#include "vmm/arch/x86/layout.hpp"
#include "vmm/arch/x86/mptable.hpp"
#include "vmm/arch/x86/vcpu_setup.hpp"
#include "vmm/boot/kernel_image.hpp"
#include "vmm/logger.hpp"

namespace kindling::vmm {
namespace {

std::function<void()> irqfd_trigger(int fd) {
  return [fd] {
    uint64_t one = 1;
    // A full counter (EAGAIN) means an interrupt is already pending: fine.
    [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof(one));
  };
}

}  // namespace

Result<PreparedPlatform> MicroVm::prepare_platform() {
  PreparedPlatform p;
  KINDLING_TRY(kvm, Kvm::open());
  p.kvm.emplace(std::move(kvm));
  KINDLING_TRY(kvm_vm, KvmVm::create(*p.kvm));
  p.vm.emplace(std::move(kvm_vm));
  if (auto s = p.vm->setup_platform(); !s) return s.error();
  return p;
}

Status MicroVm::prepare_memory(PreparedPlatform& p, uint64_t mem_bytes, bool huge_pages) {
  if (p.memory) return make_error("platform already has guest memory");
  MemoryBacking backing;
  backing.huge_pages = huge_pages;
  KINDLING_TRY(mem, GuestMemory::create(mem_bytes, backing));
  if (auto s = p.vm->map_memory(mem); !s) return s.error();
  p.memory.emplace(std::move(mem));
  p.huge_pages = huge_pages;
  return ok_status();
}

void MicroVm::discard_in_background(PreparedPlatform p) {
  try {
    std::thread([p = std::move(p)]() mutable { p = {}; }).detach();
  } catch (const std::system_error&) {
    // No thread: destroy it here, slowly but correctly.
  }
}

Result<std::unique_ptr<MicroVm>> MicroVm::build(const VmResources& res, int serial_out_fd, VmmMetrics& metrics,
                                                MicroVmHooks hooks, std::optional<PreparedPlatform> prepared) {
  if (!res.boot_source) return make_error("Cannot start microvm without kernel configuration.");
  const MachineConfig& mc = res.machine;
  std::unique_ptr<MicroVm> vm(new MicroVm(metrics));
  vm->hooks_ = std::move(hooks);
  const int64_t t0 = monotonic_us();
  auto stage = [t0](const char* what) { log_debug("build: {} at +{} us", what, monotonic_us() - t0); };

  const uint64_t mem_bytes = mc.mem_size_mib << 20;
  const bool huge_pages = mc.huge_pages == "2M";
  if (prepared && prepared->memory && !prepared->has_memory(mem_bytes, huge_pages)) {
    discard_in_background(std::move(*prepared));
    prepared.reset();
  }
  if (!prepared) {
    KINDLING_TRY(fresh, prepare_platform());
    prepared.emplace(std::move(fresh));
    stage("platform created");
  }
  if (!prepared->memory) {
    if (auto s = prepare_memory(*prepared, mem_bytes, huge_pages); !s) return s.error();
    stage("memory mapped");
  }
  vm->kvm_ = std::move(prepared->kvm);
  vm->vm_ = std::move(prepared->vm);
  vm->memory_ = std::move(prepared->memory);
  vm->vcpu_count_ = mc.vcpu_count;
  vm->huge_pages_ = huge_pages;

  // Kernel and initrd: bounded by guest memory, so a huge file cannot make us allocate without limit.
  KINDLING_TRY(kernel, read_file_bounded(res.boot_source->kernel_image_path, mem_bytes, "kernel"));
  std::string initrd;
  if (res.boot_source->initrd_path) {
    KINDLING_TRY(i, read_file_bounded(*res.boot_source->initrd_path, mem_bytes, "initrd"));
    initrd = std::move(i);
  }
  KINDLING_TRY(virtio, VirtioDevices::create(res));
  vm->virtio_ = std::move(virtio);
  std::string cmdline = res.boot_source->boot_args ? *res.boot_source->boot_args : std::string(kDefaultBootArgs);
  cmdline += vm->virtio_.cmdline_entries();
  if (cmdline.size() >= layout::kCmdlineMaxSize) {
    return make_error(fmt::format("The kernel command line with the virtio device entries is {} bytes long; at most {} are allowed.",
                                  cmdline.size(), layout::kCmdlineMaxSize - 1));
  }
  KernelInputs inputs;
  inputs.kernel = std::span(reinterpret_cast<const uint8_t*>(kernel.data()), kernel.size());
  inputs.cmdline = cmdline;
  inputs.initrd = std::span(reinterpret_cast<const uint8_t*>(initrd.data()), initrd.size());
  auto loaded = load_kernel(*vm->memory_, inputs);
  if (!loaded) return make_error("Cannot load kernel due to invalid memory configuration or invalid kernel image: " + loaded.error().message);
  if (auto s = write_mptable(*vm->memory_, mc.vcpu_count); !s) return s.error();
  stage("kernel loaded");

  // Devices.
  if (auto s = vm->attach_legacy_devices(serial_out_fd); !s) return s.error();
  if (auto s = vm->virtio_.attach(*vm->vm_, *vm->memory_, vm->mmio_bus_, vm->hooks_.use_ioeventfd); !s) return s.error();

  stage("devices created");
  // vCPUs.
  KINDLING_TRY(supported, vm->kvm_->supported_cpuid());
  const CpuTemplate no_template;
  const CpuTemplate& tmpl = res.cpu_template ? *res.cpu_template : no_template;
  for (uint32_t i = 0; i < mc.vcpu_count; ++i) {
    KINDLING_TRY(vcpu, Vcpu::create(*vm->kvm_, *vm->vm_, i));
    if (auto s = set_vcpu_cpuid(vcpu->fd(), cpuid_for_vcpu(supported, i, mc.vcpu_count, tmpl)); !s) return s.error();
    if (auto s = setup_msrs(vcpu->fd(), tmpl); !s) return s.error();
    if (auto s = setup_fpu(vcpu->fd()); !s) return s.error();
    if (auto s = setup_lapic_lints(vcpu->fd()); !s) return s.error();
    if (i == 0) {
      // Only the boot CPU gets entry state; APs wait for INIT/SIPI from the guest.
      Status s = loaded->protocol == LoadedKernel::Protocol::kPvh
                     ? setup_pvh_boot_regs(vcpu->fd(), loaded->entry, loaded->boot_info_addr)
                     : setup_linux64_boot_regs(vcpu->fd(), *vm->memory_, loaded->entry, loaded->boot_info_addr);
      if (!s) return s.error();
    }
    vm->vcpus_.push_back(std::move(vcpu));
    stage("vcpu configured");
  }
  log_info("microvm built: {} vCPU(s), {} MiB, {} kernel {}", mc.vcpu_count, mc.mem_size_mib,
               loaded->protocol == LoadedKernel::Protocol::kPvh ? "PVH" : "bzImage", res.boot_source->kernel_image_path);
  return vm;
}

Status MicroVm::attach_legacy_devices(int serial_out_fd) {
  KINDLING_TRY(com1_irq, vm_->register_irqfd(layout::kCom1Irq));
  KINDLING_TRY(kbd_irq, vm_->register_irqfd(layout::kI8042Irq));
  serial_ = std::make_shared<Uart8250>(serial_out_fd, irqfd_trigger(com1_irq.get()), metrics_);
  i8042_ = std::make_shared<I8042>([this] { guest_stopped(GuestStop::kReset, "guest reset through the i8042"); },
                                   irqfd_trigger(kbd_irq.get()), metrics_);
  irqfds_.push_back(std::move(com1_irq));
  irqfds_.push_back(std::move(kbd_irq));
  if (auto s = pio_bus_.insert(serial_, layout::kCom1Port, 8, "com1"); !s) return s;
  return pio_bus_.insert(i8042_, layout::kI8042DataPort, 5, "i8042");
}

MicroVm::~MicroVm() { stop(); }

void MicroVm::start(bool paused) {
  Vcpu::install_kick_signal();
  virtio_.start(hooks_.device_thread_setup);
  for (auto& v : vcpus_) {
    VcpuContext ctx;
    ctx.pio = &pio_bus_;
    ctx.mmio = &mmio_bus_;
    ctx.metrics = &metrics_;
    ctx.on_guest_stop = [this](GuestStop why, std::string detail) { guest_stopped(why, detail); };
    ctx.before_run = hooks_.vcpu_thread_setup;
    v->start(std::move(ctx), paused);
  }
  paused_ = paused;
  metrics_.mark(metrics_.vcpus_started_us);
  if (uffd_) uffd_->start_prefetch();
}

Status MicroVm::pause() {
  for (auto& v : vcpus_) {
    if (!v->pause(std::chrono::seconds(5))) {
      return make_error(fmt::format("vCPU {} did not pause within 5 s", v->index()));
    }
  }
  paused_ = true;
  return ok_status();
}

Status MicroVm::resume() {
  for (auto& v : vcpus_) v->resume();
  paused_ = false;
  return ok_status();
}

void MicroVm::send_ctrl_alt_del() { i8042_->send_ctrl_alt_del(); }

void MicroVm::stop() {
  for (auto& v : vcpus_) v->stop_and_join();
  virtio_.stop();
}

void MicroVm::guest_stopped(GuestStop why, const std::string& detail) {
  if (exit_reported_.exchange(true)) return;
  // No guest instruction runs after the guest asked to end (e.g. further
  // serial output from other vCPUs after a reset).
  for (auto& v : vcpus_) v->request_stop();
  ExitCode code = why == GuestStop::kReset      ? ExitCode::kOk
                  : why == GuestStop::kShutdown ? ExitCode::kGuestShutdown
                  : why == GuestStop::kVmmFault ? ExitCode::kGenericError
                                                : ExitCode::kGuestInternalError;
  if (why == GuestStop::kReset) {
    log_info("{}", detail);
  } else {
    log_error("{}", detail);
  }
  if (hooks_.on_guest_exit) hooks_.on_guest_exit(code, detail);
}

}  // namespace kindling::vmm
