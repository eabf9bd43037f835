// nms front-end: torchvision's argument checks and messages, then the kernel of
// the active CPU tier or the CUDA kernel.
#include <cstring>

#include "core/check.h"
#include "dispatch/cpu_isa.h"
#include "ops/score_order.h"
#include "tvops/ops.h"
#include "tvops/runtime.h"

#if defined(TVOPS_WITH_CUDA)
#include "kernels/cuda/ops.h"
#endif

namespace tvops {

namespace {

void check_nms_args(const Tensor& boxes, const Tensor& scores) {
  TVOPS_CHECK(boxes.defined(), Value, "nms: boxes is undefined");
  TVOPS_CHECK(scores.defined(), Value, "nms: scores is undefined");
  TVOPS_CHECK(boxes.dim() == 2, Value, "nms: boxes should be a 2d tensor, got ", boxes.dim(), "D");
  TVOPS_CHECK(boxes.size(1) == 4, Value, "nms: boxes should have 4 elements in dimension 1, got ", boxes.size(1));
  TVOPS_CHECK(scores.dim() == 1, Value, "nms: scores should be a 1d tensor, got ", scores.dim(), "D");
  TVOPS_CHECK(boxes.size(0) == scores.size(0), Value,
              "nms: boxes and scores should have same number of elements in dimension 0, got ", boxes.size(0),
              " and ", scores.size(0));
  TVOPS_CHECK(is_floating(boxes.dtype()), Type, "nms: boxes must be a floating point tensor, got ",
              dtype_name(boxes.dtype()));
  TVOPS_CHECK(boxes.dtype() == scores.dtype(), Type, "nms: boxes should have the same type as scores, got ",
              dtype_name(boxes.dtype()), " and ", dtype_name(scores.dtype()));
  TVOPS_CHECK(boxes.device() == scores.device(), Device, "nms: boxes and scores must be on the same device, got ",
              device_name(boxes.device()), " and ", device_name(scores.device()));
}

// float16/bfloat16 are computed in float32; everything is made contiguous.
Tensor compute_view(const Tensor& t) {
  if (t.dtype() == DType::Float16 || t.dtype() == DType::BFloat16) return t.to(DType::Float32);
  return t.contiguous();
}

template <typename T>
Tensor nms_cpu(const Tensor& boxes, const Tensor& scores, double iou_threshold,
               void (*kernel)(const T*, int64_t, double, uint8_t*), const Context& ctx) {
  const int64_t n = boxes.size(0);
  std::vector<int64_t> order = detail::descending_order(scores);
  std::vector<T> sorted(4 * n);
  const T* b = boxes.data<T>();
  for (int64_t r = 0; r < n; ++r) std::memcpy(&sorted[4 * r], b + 4 * order[r], 4 * sizeof(T));
  std::vector<uint8_t> keep(n);
  kernel(sorted.data(), n, iou_threshold, keep.data());
  int64_t kept = 0;
  for (int64_t r = 0; r < n; ++r) kept += keep[r];
  Tensor out = Tensor::empty({kept}, DType::Int64, Device{}, ctx);
  int64_t* o = out.data<int64_t>();
  for (int64_t r = 0; r < n; ++r)
    if (keep[r]) *o++ = order[r];
  return out;
}

}  // namespace

Tensor nms(const Tensor& boxes, const Tensor& scores, double iou_threshold, const Context& ctx) {
  check_nms_args(boxes, scores);
  if (boxes.device().is_cuda()) {
#if defined(TVOPS_WITH_CUDA)
    check_cuda_device(boxes.device().index);
    return cuda::nms(boxes, scores, iou_threshold, ctx);
#else
    detail::fail(ErrorKind::Unsupported, "nms: this tvops build (variant ", build_info().variant,
                 ") has no CUDA kernels; install a CUDA variant such as ", recommended_variant());
#endif
  }
  if (boxes.numel() == 0) return Tensor::empty({0}, DType::Int64, boxes.device(), ctx);
  const cpu::KernelTable& k = detail::cpu_kernels();
  const Tensor b = compute_view(boxes), s = compute_view(scores);
  if (b.dtype() == DType::Float64) return nms_cpu<double>(b, s, iou_threshold, k.nms_sorted_f64, ctx);
  return nms_cpu<float>(b, s, iou_threshold, k.nms_sorted_f32, ctx);
}

}  // namespace tvops
