// Which backend an op's tensors ask for (internal): CUDA tensors need a CUDA build and
// a device that build can run, and get the error naming the variant otherwise.
#pragma once

#include "core/check.h"
#include "tvops/runtime.h"
#include "tvops/tensor.h"

namespace tvops::detail {

inline void require_cuda(const char* op, Device device) {
#if defined(TVOPS_WITH_CUDA)
  (void)op;
  check_cuda_device(device.index);
#else
  (void)device;
  fail(ErrorKind::Unsupported, op, ": this tvops build (variant ", build_info().variant,
       ") has no CUDA kernels; install a CUDA variant such as ", recommended_variant());
#endif
}

// True for CUDA tensors, after require_cuda(); false for CPU ones.
inline bool runs_on_cuda(const char* op, const Tensor& t) {
  if (!t.device().is_cuda()) return false;
  require_cuda(op, t.device());
  return true;
}

}  // namespace tvops::detail
