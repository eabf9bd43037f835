// Which variant a machine needs, and the checks that say so instead of letting the
// machine die on an illegal instruction or a missing kernel image.
#include <string>

#include "core/check.h"
#include "core/cuda_backend.h"
#include "dispatch/matrix.h"
#include "tvops/runtime.h"

namespace tvops {

namespace {

// A cubin for sm_XY runs on devices of the same major version with minor >= Y.
bool cubin_runs_on(int built, int device) { return built / 10 == device / 10 && built % 10 <= device % 10; }

// The matrix's SM target for a compute capability: the newest of the same major
// not above it (sm86 for 8.7, say); 0 if the matrix has none.
int matrix_arch_for(int cc) {
  int best = 0;
  for (int arch : {TVOPS_MATRIX_CUDA_ARCHS})
    if (cubin_runs_on(arch, cc) && arch > best) best = arch;
  return best;
}

}  // namespace

std::string recommended_variant(std::string* reason) {
  const CpuFeatures& f = cpu_features();
  std::string isa = best_cpu_isa(f);
  std::string why;
  if (isa.empty()) {
    if (reason) *reason = "this CPU (" + f.arch + ") has none of the ISAs tvops is built for";
    return "none";
  }
  why = "CPU " + (f.model.empty() ? f.arch : f.model) + " runs " + isa;
  std::string arch = "cpu";
  if (cuda::built_with_cuda()) {
    try {
      std::string name;
      int cc = cuda::device_compute_capability(0, &name);
      int target = matrix_arch_for(cc);
      if (target) {
        arch = "sm" + std::to_string(target);
        why += "; GPU " + name + " has compute capability " + std::to_string(cc / 10) + "." + std::to_string(cc % 10);
      }
    } catch (const Error&) {
      why += "; no usable CUDA device";
    }
  }
  if (reason) *reason = why;
  return arch + "-" + isa;
}

void check_cuda_device(int device) {
  std::string name;
  const int cc = cuda::device_compute_capability(device, &name);
  std::string built;
  for (int arch : build_info().cuda_archs) {
    if (cubin_runs_on(arch, cc)) return;
    built += (built.empty() ? "sm_" : ", sm_") + std::to_string(arch);
  }
  detail::fail(ErrorKind::Unsupported, "tvops: GPU ", device, " (", name, ", compute capability ", cc / 10, ".",
               cc % 10, ") cannot run this build: variant ", build_info().variant, " has kernels for ", built,
               " only. Install the variant ", recommended_variant(), " instead.");
}

}  // namespace tvops
