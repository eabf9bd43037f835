#include "core/check.h"
#include "core/cuda_backend.h"
#include "tvops/runtime.h"

namespace tvops::cuda {

namespace {
[[noreturn]] void no_cuda() {
  detail::fail(ErrorKind::Unsupported, "this tvops build (variant ", build_info().variant,
               ") has no CUDA kernels; install a CUDA variant: ", recommended_variant());
}
}  // namespace

bool built_with_cuda() { return false; }
std::string toolkit_version() { return ""; }
std::shared_ptr<void> allocate(std::size_t, int, void*) { no_cuda(); }
void copy_to_host_sync(void*, const void*, std::size_t, void*) { no_cuda(); }
void copy_to_contiguous(const Tensor&, void*, void*) { no_cuda(); }
int device_compute_capability(int, std::string*) { no_cuda(); }

}  // namespace tvops::cuda
