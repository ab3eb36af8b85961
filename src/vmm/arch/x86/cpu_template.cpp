#include "vmm/arch/x86/cpu_template.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>

namespace kindling::vmm {
namespace {

using nlohmann::json;

Result<uint64_t> parse_number(const json& j, const char* field) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    try {
      size_t used = 0;
      uint64_t v = std::stoull(s, &used, 0);
      if (used == s.size() && !s.empty()) return v;
    } catch (const std::exception&) {
    }
  }
  return make_error(fmt::format("cpu template: `{}` must be a number or a hex string", field));
}

Result<BitmapModifier> parse_bitmap(const json& j, size_t bits) {
  if (!j.is_string()) return make_error("cpu template: `bitmap` must be a string like \"0bxx01\"");
  std::string s = j.get<std::string>();
  if (s.rfind("0b", 0) != 0) return make_error("cpu template: `bitmap` must start with 0b");
  s.erase(0, 2);
  if (s.size() != bits) return make_error(fmt::format("cpu template: `bitmap` must have {} bit characters, has {}", bits, s.size()));
  BitmapModifier m;
  for (size_t i = 0; i < s.size(); ++i) {
    uint64_t bit = uint64_t{1} << (bits - 1 - i);
    switch (s[i]) {
      case '0': m.mask |= bit; break;
      case '1': m.mask |= bit; m.value |= bit; break;
      case 'x': case 'X': break;
      default: return make_error(fmt::format("cpu template: bad bitmap character '{}'", s[i]));
    }
  }
  return m;
}

Status expect_only(const json& obj, std::initializer_list<const char*> allowed, const char* what) {
  if (!obj.is_object()) return make_error(fmt::format("cpu template: {} must be an object", what));
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (const char* a : allowed) known = known || it.key() == a;
    if (!known) return make_error(fmt::format("cpu template: unknown field `{}` in {}", it.key(), what));
  }
  return ok_status();
}

}  // namespace

Result<CpuTemplate> parse_cpu_template(std::string_view json_text) {
  json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded()) return make_error("cpu template: malformed JSON");
  if (auto s = expect_only(doc, {"cpuid_modifiers", "msr_modifiers", "kvm_capabilities", "vcpu_features"}, "the template"); !s) {
    return s.error();
  }
  CpuTemplate t;
  if (doc.contains("cpuid_modifiers")) {
    if (!doc["cpuid_modifiers"].is_array()) return make_error("cpu template: `cpuid_modifiers` must be an array");
    for (const auto& leaf : doc["cpuid_modifiers"]) {
      if (auto s = expect_only(leaf, {"leaf", "subleaf", "flags", "modifiers"}, "a cpuid modifier"); !s) return s.error();
      if (!leaf.contains("leaf") || !leaf.contains("modifiers")) return make_error("cpu template: a cpuid modifier needs `leaf` and `modifiers`");
      KINDLING_TRY(leaf_no, parse_number(leaf["leaf"], "leaf"));
      uint64_t subleaf_no = 0, flags = 0;
      if (leaf.contains("subleaf")) {
        KINDLING_TRY(v, parse_number(leaf["subleaf"], "subleaf"));
        subleaf_no = v;
      }
      if (leaf.contains("flags")) {
        KINDLING_TRY(v, parse_number(leaf["flags"], "flags"));
        flags = v;
      }
      if (leaf_no > 0xffffffff || subleaf_no > 0xffffffff) return make_error("cpu template: leaf or subleaf out of range");
      if (!leaf["modifiers"].is_array()) return make_error("cpu template: `modifiers` must be an array");
      for (const auto& m : leaf["modifiers"]) {
        if (auto s = expect_only(m, {"register", "bitmap"}, "a register modifier"); !s) return s.error();
        if (!m.contains("register") || !m["register"].is_string()) return make_error("cpu template: `register` must be eax, ebx, ecx or edx");
        CpuidModifier cm;
        cm.leaf = static_cast<uint32_t>(leaf_no);
        cm.subleaf = static_cast<uint32_t>(subleaf_no);
        cm.flags = static_cast<uint32_t>(flags);
        std::string r = m["register"].get<std::string>();
        if (r == "eax") cm.reg = CpuidModifier::Register::kEax;
        else if (r == "ebx") cm.reg = CpuidModifier::Register::kEbx;
        else if (r == "ecx") cm.reg = CpuidModifier::Register::kEcx;
        else if (r == "edx") cm.reg = CpuidModifier::Register::kEdx;
        else return make_error(fmt::format("cpu template: unknown register `{}`", r));
        KINDLING_TRY(bits, parse_bitmap(m.value("bitmap", json()), 32));
        cm.bits = bits;
        t.cpuid.push_back(cm);
      }
    }
  }
  if (doc.contains("msr_modifiers")) {
    if (!doc["msr_modifiers"].is_array()) return make_error("cpu template: `msr_modifiers` must be an array");
    for (const auto& m : doc["msr_modifiers"]) {
      if (auto s = expect_only(m, {"addr", "bitmap"}, "an msr modifier"); !s) return s.error();
      if (!m.contains("addr")) return make_error("cpu template: an msr modifier needs `addr`");
      KINDLING_TRY(addr, parse_number(m["addr"], "addr"));
      if (addr > 0xffffffff) return make_error("cpu template: msr addr out of range");
      KINDLING_TRY(bits, parse_bitmap(m.value("bitmap", json()), 64));
      t.msrs.push_back({static_cast<uint32_t>(addr), bits});
    }
  }
  return t;
}

void apply_cpuid_template(const CpuTemplate& tmpl, std::vector<kvm_cpuid_entry2>& entries) {
  for (const auto& m : tmpl.cpuid) {
    kvm_cpuid_entry2* e = nullptr;
    for (auto& candidate : entries) {
      bool indexed = candidate.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
      if (candidate.function == m.leaf && (!indexed || candidate.index == m.subleaf)) {
        e = &candidate;
        break;
      }
    }
    if (!e) {
      kvm_cpuid_entry2 fresh{};
      fresh.function = m.leaf;
      fresh.index = m.subleaf;
      fresh.flags = m.flags;
      entries.push_back(fresh);
      e = &entries.back();
    }
    uint32_t* reg = m.reg == CpuidModifier::Register::kEax ? &e->eax
                    : m.reg == CpuidModifier::Register::kEbx ? &e->ebx
                    : m.reg == CpuidModifier::Register::kEcx ? &e->ecx
                                                             : &e->edx;
    *reg = static_cast<uint32_t>(m.bits.apply(*reg));
  }
}

}  // namespace kindling::vmm
