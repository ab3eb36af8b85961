#include "vmm/boot/bzimage.hpp"

#include <fmt/format.h>

#include <array>
#include <cstring>

#include "vmm/arch/x86/layout.hpp"
#include "vmm/boot/e820.hpp"

namespace kindling::vmm {
namespace {

constexpr uint16_t kMinProtocol = 0x020c;  // 2.12: xloadflags, 64-bit entry
constexpr uint16_t kXlfKernel64 = 1 << 0;
constexpr uint8_t kLoadedHigh = 1 << 0, kCanUseHeap = 1 << 7;
constexpr uint8_t kLoaderUndefined = 0xff;
constexpr uint64_t kKernelLoadAddr = layout::kHighMemStart;
constexpr uint64_t kEntryOffset64 = 0x200;

template <typename T>
T get(std::span<const uint8_t> b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof(T));
  return v;
}
template <typename T>
void put(std::span<uint8_t> b, size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof(T));
}

}  // namespace

bool is_bzimage(std::span<const uint8_t> image) {
  return image.size() >= zero_page::kHeaderMagic + 4 && std::memcmp(image.data() + zero_page::kHeaderMagic, "HdrS", 4) == 0;
}

Result<BzImageHeader> parse_bzimage_header(std::span<const uint8_t> image) {
  using namespace zero_page;
  if (image.size() < 1024 || !is_bzimage(image)) return make_error("kernel is not a bzImage: no HdrS setup header");
  if (get<uint16_t>(image, kBootFlag) != 0xaa55) return make_error("bzImage boot flag is not 0xAA55");
  BzImageHeader h;
  h.protocol_version = get<uint16_t>(image, kVersion);
  if (h.protocol_version < kMinProtocol) {
    return make_error(fmt::format("bzImage boot protocol {}.{} is too old; 2.12 or newer is needed",
                                  h.protocol_version >> 8, h.protocol_version & 0xff));
  }
  uint32_t setup_sects = image[kSetupSects];
  if (setup_sects == 0) setup_sects = 4;
  h.setup_size = (setup_sects + 1) * 512;
  if (h.setup_size >= image.size()) return make_error("bzImage is truncated: no protected-mode kernel after setup");
  h.kernel_size = static_cast<uint32_t>(image.size() - h.setup_size);
  h.loadflags = image[kLoadFlags];
  h.initrd_addr_max = get<uint32_t>(image, kInitrdAddrMax);
  h.relocatable = image[kRelocatable] != 0;
  h.xloadflags = get<uint16_t>(image, kXloadflags);
  h.cmdline_size = get<uint32_t>(image, kCmdlineSize);
  h.pref_address = get<uint64_t>(image, kPrefAddress);
  h.init_size = get<uint32_t>(image, kInitSize);
  if (!(h.xloadflags & kXlfKernel64)) return make_error("bzImage has no 64-bit entry point (XLF_KERNEL_64)");
  if (!(h.loadflags & kLoadedHigh)) return make_error("bzImage is not a high-loaded (bzImage) kernel");
  if (h.init_size < h.kernel_size) h.init_size = h.kernel_size;
  return h;
}

Result<LoadedKernel> load_bzimage(const GuestMemory& mem, const KernelInputs& in) {
  using namespace zero_page;
  KINDLING_TRY(h, parse_bzimage_header(in.kernel));
  if (in.cmdline.size() >= h.cmdline_size && h.cmdline_size != 0) {
    return make_error(fmt::format("kernel command line is {} bytes; this kernel accepts at most {}", in.cmdline.size(), h.cmdline_size - 1));
  }
  // The kernel decompresses itself in place and needs init_size bytes there.
  if (!mem.contains(kKernelLoadAddr, h.init_size)) {
    return make_error(fmt::format("guest memory is too small for this kernel: it needs {} MiB above 1 MiB", (h.init_size >> 20) + 1));
  }
  KINDLING_TRY(copied, mem.write(kKernelLoadAddr, in.kernel.subspan(h.setup_size)));
  (void)copied;

  std::array<uint8_t, kBootParamsSize> zp{};
  std::span<uint8_t> params(zp);
  // The setup header runs from 0x1f1 to the end given by the jump at 0x200.
  size_t header_end = 0x202 + in.kernel[0x201];
  if (header_end > in.kernel.size() || header_end > kE820Table) return make_error("bzImage setup header is malformed");
  std::memcpy(zp.data() + kSetupHeader, in.kernel.data() + kSetupHeader, header_end - kSetupHeader);
  params[kTypeOfLoader] = kLoaderUndefined;
  params[kLoadFlags] = static_cast<uint8_t>(h.loadflags | kCanUseHeap);
  put<uint16_t>(params, kHeapEndPtr, 0xfe00);
  KINDLING_TRY(cmd, write_cmdline(mem, in.cmdline));
  (void)cmd;
  put<uint32_t>(params, kCmdLinePtr, static_cast<uint32_t>(layout::kCmdlineAddr));
  put<uint32_t>(params, kExtCmdLinePtr, 0);

  if (!in.initrd.empty()) {
    uint64_t max = h.initrd_addr_max ? h.initrd_addr_max : 0x37ffffff;
    KINDLING_TRY(addr, place_initrd(mem, in.initrd, kKernelLoadAddr + h.init_size, max));
    put<uint32_t>(params, kRamdiskImage, static_cast<uint32_t>(addr));
    put<uint32_t>(params, kRamdiskSize, static_cast<uint32_t>(in.initrd.size()));
    put<uint32_t>(params, kExtRamdiskImage, static_cast<uint32_t>(addr >> 32));
    put<uint32_t>(params, kExtRamdiskSize, static_cast<uint32_t>(uint64_t{in.initrd.size()} >> 32));
  }

  auto e820 = build_e820(mem);
  if (e820.size() > kE820MaxEntries) return make_error("too many E820 entries");
  params[kE820Entries] = static_cast<uint8_t>(e820.size());
  for (size_t i = 0; i < e820.size(); ++i) {
    size_t off = kE820Table + i * 20;  // packed struct boot_e820_entry
    put<uint64_t>(params, off, e820[i].addr);
    put<uint64_t>(params, off + 8, e820[i].size);
    put<uint32_t>(params, off + 16, e820[i].type);
  }
  KINDLING_TRY(zw, mem.write(layout::kZeroPageAddr, params));
  (void)zw;
  return LoadedKernel{LoadedKernel::Protocol::kLinux64, kKernelLoadAddr + kEntryOffset64, layout::kZeroPageAddr};
}

}  // namespace kindling::vmm
