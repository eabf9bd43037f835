#include "core/cuda_backend.h"
#include "dispatch/matrix.h"
#include "tvops/runtime.h"
#include "tvops/version.h"

namespace tvops {

const BuildInfo& build_info() {
  static const BuildInfo info = [] {
    BuildInfo b;
    b.version = TVOPS_VERSION;
    b.variant = TVOPS_BUILD_VARIANT;
    b.host_arch = TVOPS_HOST_ARCH;
    for (const char* isa : {TVOPS_BUILD_CPU_ISAS}) b.cpu_isas.push_back(isa);
    for (int arch : {TVOPS_BUILD_CUDA_ARCHS})
      if (arch > 0) b.cuda_archs.push_back(arch);
    b.cuda_version = cuda::toolkit_version();
    b.compiler = TVOPS_COMPILER;
    b.build_type = TVOPS_BUILD_TYPE;
    b.git_revision = TVOPS_GIT_REVISION;
    return b;
  }();
  return info;
}

}  // namespace tvops
