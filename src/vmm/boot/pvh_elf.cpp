#include "vmm/boot/pvh_elf.hpp"

#include <elf.h>
#include <fmt/format.h>

#include <cstring>

#include "vmm/arch/x86/layout.hpp"
#include "vmm/boot/e820.hpp"

namespace kindling::vmm {
namespace {

constexpr uint32_t kXenElfnotePhys32Entry = 18;
constexpr uint32_t kStartInfoMagic = 0x336ec578;
constexpr uint64_t kModlistAddr = layout::kPvhStartInfoAddr + 0x400;
constexpr size_t kMaxMemmapEntries = 32;

struct HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};
struct HvmMemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};
struct HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};

// Overflow-safe "does [off, off+len) lie inside a buffer of `size` bytes".
bool in_bounds(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

Result<Elf64_Ehdr> read_header(std::span<const uint8_t> image) {
  if (image.size() < sizeof(Elf64_Ehdr)) return make_error("kernel ELF is truncated: shorter than its header");
  Elf64_Ehdr eh;
  std::memcpy(&eh, image.data(), sizeof(eh));
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) return make_error("kernel ELF is not 64-bit (ELFCLASS64 required)");
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64) return make_error("kernel ELF is not for x86-64");
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) return make_error("kernel ELF has an unexpected program header size");
  if (eh.e_phnum == 0 || !in_bounds(eh.e_phoff, uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr), image.size())) {
    return make_error("kernel ELF program headers lie outside the file");
  }
  return eh;
}

Elf64_Phdr program_header(std::span<const uint8_t> image, const Elf64_Ehdr& eh, size_t i) {
  Elf64_Phdr ph;
  std::memcpy(&ph, image.data() + eh.e_phoff + i * sizeof(Elf64_Phdr), sizeof(ph));
  return ph;
}

}  // namespace

bool is_elf(std::span<const uint8_t> image) { return image.size() >= 4 && std::memcmp(image.data(), ELFMAG, SELFMAG) == 0; }

Result<uint64_t> find_pvh_entry(std::span<const uint8_t> image) {
  KINDLING_TRY(eh, read_header(image));
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph = program_header(image, eh, i);
    if (ph.p_type != PT_NOTE) continue;
    if (!in_bounds(ph.p_offset, ph.p_filesz, image.size())) return make_error("kernel ELF note segment lies outside the file");
    uint64_t off = ph.p_offset, end = ph.p_offset + ph.p_filesz;
    while (end - off >= sizeof(Elf64_Nhdr)) {
      Elf64_Nhdr nh;
      std::memcpy(&nh, image.data() + off, sizeof(nh));
      uint64_t name_off = off + sizeof(nh);
      uint64_t desc_off = name_off + ((uint64_t{nh.n_namesz} + 3) & ~uint64_t{3});
      uint64_t next = desc_off + ((uint64_t{nh.n_descsz} + 3) & ~uint64_t{3});
      if (next > end || next <= off) break;
      if (nh.n_type == kXenElfnotePhys32Entry && nh.n_namesz == 4 && std::memcmp(image.data() + name_off, "Xen", 4) == 0) {
        if (nh.n_descsz == 4) {
          uint32_t v;
          std::memcpy(&v, image.data() + desc_off, 4);
          return uint64_t{v};
        }
        if (nh.n_descsz == 8) {
          uint64_t v;
          std::memcpy(&v, image.data() + desc_off, 8);
          return v;
        }
        return make_error("kernel ELF PVH note has a bad descriptor size");
      }
      off = next;
    }
  }
  return make_error("kernel ELF has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); build it with a PVH entry point");
}

Result<LoadedKernel> load_pvh_elf(const GuestMemory& mem, const KernelInputs& in) {
  KINDLING_TRY(eh, read_header(in.kernel));
  KINDLING_TRY(entry, find_pvh_entry(in.kernel));
  uint64_t kernel_end = 0;
  bool entry_loaded = false;
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph = program_header(in.kernel, eh, i);
    if (ph.p_type != PT_LOAD) continue;
    if (!in_bounds(ph.p_offset, ph.p_filesz, in.kernel.size())) return make_error("kernel ELF segment lies outside the file");
    if (ph.p_filesz > ph.p_memsz) return make_error("kernel ELF segment has file size above memory size");
    if (ph.p_paddr < layout::kHighMemStart) return make_error(fmt::format("kernel ELF segment at {:#x} is below 1 MiB", ph.p_paddr));
    auto dst = mem.slice(ph.p_paddr, ph.p_memsz);
    if (!dst) return make_error(fmt::format("kernel ELF segment {:#x}+{:#x} does not fit in guest memory", ph.p_paddr, ph.p_memsz));
    std::memcpy(dst->data(), in.kernel.data() + ph.p_offset, ph.p_filesz);
    std::memset(dst->data() + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
    kernel_end = std::max(kernel_end, ph.p_paddr + ph.p_memsz);
    entry_loaded = entry_loaded || (entry >= ph.p_paddr && entry - ph.p_paddr < ph.p_memsz);
  }
  if (!entry_loaded) return make_error("kernel ELF PVH entry point is not inside any loaded segment");

  KINDLING_TRY(cmdline_ok, write_cmdline(mem, in.cmdline));
  (void)cmdline_ok;

  HvmStartInfo si{};
  si.magic = kStartInfoMagic;
  si.version = 1;
  si.cmdline_paddr = layout::kCmdlineAddr;
  if (!in.initrd.empty()) {
    KINDLING_TRY(initrd_addr, place_initrd(mem, in.initrd, kernel_end, layout::kMmioGapStart - 1));
    HvmModlistEntry mod{initrd_addr, in.initrd.size(), 0, 0};
    KINDLING_TRY(w, mem.write_obj(kModlistAddr, mod));
    (void)w;
    si.nr_modules = 1;
    si.modlist_paddr = kModlistAddr;
  }
  auto e820 = build_e820(mem);
  if (e820.size() > kMaxMemmapEntries) return make_error("too many memory map entries");
  for (size_t i = 0; i < e820.size(); ++i) {
    HvmMemmapEntry e{e820[i].addr, e820[i].size, e820[i].type, 0};
    KINDLING_TRY(w, mem.write_obj(layout::kPvhMemmapAddr + i * sizeof(e), e));
    (void)w;
  }
  si.memmap_paddr = layout::kPvhMemmapAddr;
  si.memmap_entries = static_cast<uint32_t>(e820.size());
  KINDLING_TRY(w, mem.write_obj(layout::kPvhStartInfoAddr, si));
  (void)w;
  return LoadedKernel{LoadedKernel::Protocol::kPvh, entry, layout::kPvhStartInfoAddr};
}

}  // namespace kindling::vmm
