// What this build of tvops is, what the machine offers, and which code paths run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tvops/export.h"

namespace tvops {

struct BuildInfo {
  std::string version;                 // "0.1.0"
  std::string variant;                 // "sm90-avx512", "cpu-armv9", "dev", ...
  std::string host_arch;               // "x86_64" or "aarch64"
  std::vector<std::string> cpu_isas;   // ISA tiers compiled in ("avx2", "avx512", ...)
  std::vector<int> cuda_archs;         // SM targets compiled in (90 = sm_90); empty: CPU only
  std::string cuda_version;            // toolkit the kernels were built with, "" without CUDA
  std::string compiler;                // "GNU 12.2.0"
  std::string build_type;              // "Release", ...
  std::string git_revision;
};
TVOPS_API const BuildInfo& build_info();

// CPU features as read at run time (cpuid/xgetbv on x86, hwcaps on aarch64).
struct CpuFeatures {
  std::string arch;    // "x86_64", "aarch64"
  std::string model;   // brand string where the CPU gives one
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512dq = false, avx512vl = false, avx512bw = false;
  bool avx512bf16 = false, avx512vnni = false;
  bool os_avx = false, os_avx512 = false;  // the OS saves the wide registers (XCR0)
  bool asimd = false, asimddp = false, asimdhp = false, sve = false, sve2 = false;
  int logical_cores = 1;
};
TVOPS_API const CpuFeatures& cpu_features();

// True when the CPU can run code compiled for `isa` (a name from cmake/variants.json).
TVOPS_API bool cpu_supports(const std::string& isa, const CpuFeatures& f = cpu_features());
// The best ISA name of the matrix this CPU runs ("avx512bf16", "armv8.2", ...; "" if none).
TVOPS_API std::string best_cpu_isa(const CpuFeatures& f = cpu_features());

// Throws tvops::Error naming the variant to install when this machine can't run
// this build's CPU code. Runs before any ISA-specific instruction; every op calls it
// on first use, and the Python package calls it at import.
TVOPS_API void check_cpu_compatibility();
// Same for a CUDA device: its compute capability against the compiled SM targets.
TVOPS_API void check_cuda_device(int device_index);
// The variant this machine should install, with the reason ("sm90-avx512bf16: ...").
TVOPS_API std::string recommended_variant(std::string* reason = nullptr);

// CPU ISA tier the kernels use now. Starts at the best compiled tier the CPU runs,
// capped by TVOPS_CPU_ISA; set_cpu_isa() switches (tests and benchmarks run every tier).
TVOPS_API std::string active_cpu_isa();
TVOPS_API std::vector<std::string> available_cpu_isas();  // compiled and runnable here
TVOPS_API void set_cpu_isa(const std::string& isa);

// Worker threads for CPU ops: TVOPS_NUM_THREADS, default all cores.
TVOPS_API int num_threads();
TVOPS_API void set_num_threads(int n);

// Frees the large host blocks tvops keeps for reuse (see TVOPS_HOST_CACHE_MB).
TVOPS_API void release_cached_memory();

}  // namespace tvops
