// Picks the CPU kernel tier at run time, like ATen's DispatchStub and Highway's
// dynamic dispatch: every compiled tier registers a table of function pointers;
// the best one this CPU runs is used, capped by TVOPS_CPU_ISA=<isa>.
#include "dispatch/cpu_isa.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "core/check.h"
#include "dispatch/matrix.h"
#include "tvops/runtime.h"

TVOPS_FOR_EACH_CPU_TIER(TVOPS_DECLARE_CPU_TIER)

namespace tvops {

namespace {

struct Tier {
  const char* name;
  const char* parent;  // "" for a root tier
  void (*fill)(cpu::KernelTable&, bool base);
};

#define TVOPS_TIER_ENTRY(ns, name, parent) Tier{name, parent, &cpu::ns::fill_kernel_table},
const Tier kTiers[] = {TVOPS_FOR_EACH_CPU_TIER(TVOPS_TIER_ENTRY)};
#undef TVOPS_TIER_ENTRY
constexpr int kNumTiers = sizeof(kTiers) / sizeof(kTiers[0]);

const Tier* find_tier(const std::string& name) {
  for (const Tier& t : kTiers)
    if (name == t.name) return &t;
  return nullptr;
}

// Table of a tier: its compiled ancestors fill first, so a wider tier only
// overrides the kernels it opts into.
cpu::KernelTable build_table(const Tier& tier) {
  std::vector<const Tier*> chain;
  for (const Tier* t = &tier; t; t = *t->parent ? find_tier(t->parent) : nullptr) chain.push_back(t);
  cpu::KernelTable table;
  for (std::size_t i = chain.size(); i-- > 0;) chain[i]->fill(table, i == chain.size() - 1);
  return table;
}

std::mutex g_mutex;
cpu::KernelTable g_tables[kNumTiers];
std::atomic<const cpu::KernelTable*> g_active{nullptr};

const cpu::KernelTable* table_for(const Tier& tier) {
  cpu::KernelTable& slot = g_tables[&tier - kTiers];
  if (!slot.isa) slot = build_table(tier);
  return &slot;
}

std::string joined_tiers() {
  std::string s;
  for (const Tier& t : kTiers) s += (s.empty() ? "" : ", ") + std::string(t.name);
  return s;
}

// Best compiled tier this CPU runs. With a cap (TVOPS_CPU_ISA), only the cap and its
// ancestors qualify (avx512bf16 -> avx512 -> avx2): on a CPU without bf16,
// TVOPS_CPU_ISA=avx512bf16 runs avx512. Null if nothing qualifies.
const Tier* best_runnable(const std::string& cap) {
  std::vector<const Tier*> allowed;
  if (!cap.empty())
    for (const Tier* t = find_tier(cap); t; t = *t->parent ? find_tier(t->parent) : nullptr) allowed.push_back(t);
  for (const char* name : {TVOPS_ISA_PREFERENCE}) {
    const Tier* t = find_tier(name);
    if (!t || !cpu_supports(name)) continue;
    if (cap.empty() || std::find(allowed.begin(), allowed.end(), t) != allowed.end()) return t;
  }
  return nullptr;
}

}  // namespace

void check_cpu_compatibility() {
  for (const Tier& t : kTiers)
    if (cpu_supports(t.name)) return;
  const CpuFeatures& f = cpu_features();
  std::string why;
  const std::string variant = recommended_variant(&why);
  detail::fail(ErrorKind::Unsupported, "tvops: this CPU (", f.model.empty() ? f.arch : f.model,
               ") cannot run this build: variant ", TVOPS_BUILD_VARIANT, " needs the ISA ", joined_tiers(), ". ",
               variant == "none" ? "No tvops variant runs here: " + why + "."
                                 : "Install the variant " + variant + " instead (" + why + ").");
}

namespace detail {

const cpu::KernelTable& cpu_kernels() {
  if (const cpu::KernelTable* t = g_active.load(std::memory_order_acquire)) return *t;
  check_cpu_compatibility();
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_active.load()) {
    const Tier* tier = nullptr;
    if (const char* env = std::getenv("TVOPS_CPU_ISA"); env && *env) {
      tier = best_runnable(env);
      TVOPS_CHECK(tier, Unsupported, "TVOPS_CPU_ISA=", env, ": no ISA tier of this build up to '", env,
                  "' runs on this CPU (built: ", joined_tiers(), ")");
    } else {
      tier = best_runnable("");
    }
    g_active.store(table_for(*tier), std::memory_order_release);
  }
  return *g_active.load();
}

}  // namespace detail

std::string active_cpu_isa() { return detail::cpu_kernels().isa; }

std::vector<std::string> available_cpu_isas() {
  std::vector<std::string> out;
  for (const Tier& t : kTiers)
    if (cpu_supports(t.name)) out.push_back(t.name);
  return out;
}

void set_cpu_isa(const std::string& isa) {
  check_cpu_compatibility();
  const Tier* tier = find_tier(isa);
  TVOPS_CHECK(tier, Value, "set_cpu_isa: '", isa, "' is not compiled in this build (", joined_tiers(), ")");
  TVOPS_CHECK(cpu_supports(isa), Unsupported, "set_cpu_isa: this CPU cannot run '", isa, "'");
  std::lock_guard<std::mutex> lock(g_mutex);
  g_active.store(table_for(*tier), std::memory_order_release);
}

}  // namespace tvops
