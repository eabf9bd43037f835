// CPU feature detection. Compiled with baseline flags and without LTO (see
// CMakeLists.txt): it must run on any CPU of the architecture, before any
// ISA-specific code is reached, so that a machine too old for the build gets a
// clear error instead of SIGILL.
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <thread>
#include <utility>

#include "dispatch/matrix.h"
#include "tvops/runtime.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#elif defined(__aarch64__)
#include <sys/auxv.h>
#endif

namespace tvops {

namespace {

#if defined(__x86_64__)
unsigned long long read_xcr0() {
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

void detect_x86(CpuFeatures& f) {
  f.arch = "x86_64";
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return;
  const bool osxsave = c & (1u << 27);
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  const bool avx = c & (1u << 28);
  if (osxsave) {
    const unsigned long long xcr0 = read_xcr0();
    f.os_avx = avx && (xcr0 & 0x6) == 0x6;              // SSE and AVX state
    f.os_avx512 = f.os_avx && (xcr0 & 0xe0) == 0xe0;    // opmask, ZMM_Hi256, Hi16_ZMM
  }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = b & (1u << 5);
    f.avx512f = b & (1u << 16);
    f.avx512dq = b & (1u << 17);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512vnni = c & (1u << 11);
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512bf16 = a & (1u << 5);
  // Features are only usable when the OS saves the registers they need.
  if (!f.os_avx) f.avx2 = f.fma = f.f16c = false;
  if (!f.os_avx512) f.avx512f = f.avx512dq = f.avx512bw = f.avx512vl = f.avx512vnni = f.avx512bf16 = false;

  unsigned int brand[12] = {};
  if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
    for (unsigned int i = 0; i < 3; ++i)
      __get_cpuid(0x80000002 + i, &brand[4 * i], &brand[4 * i + 1], &brand[4 * i + 2], &brand[4 * i + 3]);
    char text[49] = {};
    std::memcpy(text, brand, 48);
    f.model = text;
    auto first = f.model.find_first_not_of(' ');
    f.model = first == std::string::npos ? "" : f.model.substr(first);
  }
}
#endif

#if defined(__aarch64__)
void detect_arm(CpuFeatures& f) {
  f.arch = "aarch64";
  const unsigned long hw = getauxval(AT_HWCAP);
  const unsigned long hw2 = getauxval(AT_HWCAP2);
  f.asimd = hw & (1ul << 1);      // HWCAP_ASIMD
  f.asimdhp = hw & (1ul << 10);   // HWCAP_ASIMDHP
  f.asimddp = hw & (1ul << 20);   // HWCAP_ASIMDDP
  f.sve = hw & (1ul << 22);       // HWCAP_SVE
  f.sve2 = hw2 & (1ul << 1);      // HWCAP2_SVE2
}
#endif

// TVOPS_HIDE_CPU_FEATURES="avx512f sve2 ...": treat these features as absent (never
// adds one). Shows what a build does on an older CPU: the load-time check's error,
// the tier chosen, the variant recommended.
void hide_features(CpuFeatures& f, const char* names) {
  static const std::pair<const char*, bool CpuFeatures::*> kMembers[] = {
      {"avx2", &CpuFeatures::avx2},         {"fma", &CpuFeatures::fma},
      {"f16c", &CpuFeatures::f16c},         {"avx512f", &CpuFeatures::avx512f},
      {"avx512dq", &CpuFeatures::avx512dq}, {"avx512vl", &CpuFeatures::avx512vl},
      {"avx512bw", &CpuFeatures::avx512bw}, {"avx512bf16", &CpuFeatures::avx512bf16},
      {"avx512vnni", &CpuFeatures::avx512vnni}, {"asimd", &CpuFeatures::asimd},
      {"asimddp", &CpuFeatures::asimddp},   {"asimdhp", &CpuFeatures::asimdhp},
      {"sve", &CpuFeatures::sve},           {"sve2", &CpuFeatures::sve2}};
  std::string list = std::string(" ") + names + " ";
  for (char& c : list)
    if (c == ',') c = ' ';
  for (const auto& [name, member] : kMembers)
    if (list.find(std::string(" ") + name + " ") != std::string::npos) f.*member = false;
}

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__)
  detect_x86(f);
#elif defined(__aarch64__)
  detect_arm(f);
#else
  f.arch = "unknown";
#endif
  if (const char* hide = std::getenv("TVOPS_HIDE_CPU_FEATURES"); hide && *hide) hide_features(f, hide);
  unsigned n = std::thread::hardware_concurrency();
  f.logical_cores = n ? static_cast<int>(n) : 1;
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

bool cpu_supports(const std::string& isa, const CpuFeatures& f) {
  // The features each ISA needs come from cmake/variants.json (cpu_features), the
  // same lists the configure-time check and the variant recommender read.
  auto has_all = [&f](std::initializer_list<bool CpuFeatures::*> needs) {
    for (bool CpuFeatures::*flag : needs)
      if (!(f.*flag)) return false;
    return true;
  };
#define TVOPS_ISA_CASE(name, ...) \
  if (isa == name) return has_all({__VA_ARGS__});
  TVOPS_FOR_EACH_MATRIX_ISA(TVOPS_ISA_CASE)
#undef TVOPS_ISA_CASE
  return false;
}

std::string best_cpu_isa(const CpuFeatures& f) {
  for (const char* isa : {TVOPS_ISA_PREFERENCE})  // cmake/variants.json, via matrix.h
    if (cpu_supports(isa, f)) return isa;
  return "";
}

}  // namespace tvops
