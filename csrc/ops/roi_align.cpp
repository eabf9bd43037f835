// roi_align front-end: torchvision's checks, a channels-last view of the feature map
// (copied only when the input is not channels-last already), RoIs spread over the
// thread pool for the forward and channel blocks for the backward (no atomics, so it
// is deterministic).
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "dispatch/cpu_isa.h"
#include "ops/roi_common.h"
#include "tvops/ops.h"

namespace tvops {

namespace {

using detail::check_pooling;
using detail::check_rois;
using detail::checked_rois;
using detail::compute_dtype;
using detail::make_args;

template <typename T>
Tensor forward_typed(const Tensor& input, const Tensor& rois_in, double spatial_scale, int64_t ph, int64_t pw,
                     int64_t sampling_ratio, bool aligned, cpu::RoiAlignForward<T> kernel) {
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const Tensor rois = checked_rois<T>("roi_align", rois_in, N);
  const bool direct = detail::is_channels_last(input) && input.dtype() == compute_dtype(input.dtype());
  const Tensor nhwc = direct ? input : detail::to_nhwc<T>(input);
  const T* base = direct ? input.data<T>() : nhwc.data<T>();
  const int64_t K = rois.size(0);
  Tensor out = Tensor::empty({K, C, ph, pw}, compute_dtype(input.dtype()));
  auto args = make_args<T>(rois, C, H, W, ph, pw, sampling_ratio, spatial_scale, aligned);
  const std::vector<int64_t> order = detail::spatial_order<T>(rois, spatial_scale);
  args.order = order.data();
  detail::parallel_for(0, K, 1, [&](int64_t lo, int64_t hi) { kernel(args, base, lo, hi, out.data<T>()); });
  return out.to(input.dtype());
}

template <typename T>
Tensor backward_typed(const Tensor& grad, const Tensor& rois_in, double spatial_scale, int64_t ph, int64_t pw,
                      int64_t N, int64_t C, int64_t H, int64_t W, int64_t sampling_ratio, bool aligned,
                      cpu::RoiAlignBackward<T> kernel) {
  const Tensor rois = checked_rois<T>("roi_align_backward", rois_in, N);
  const Tensor g = grad.to(compute_dtype(grad.dtype())).contiguous();
  Tensor grad_nhwc = Tensor::zeros({N, H, W, C}, g.dtype());
  const auto args = make_args<T>(rois, C, H, W, ph, pw, sampling_ratio, spatial_scale, aligned);
  // Channel blocks are independent: each thread owns its channels of every pixel.
  const int64_t block = 16;
  detail::parallel_for(0, (C + block - 1) / block, 1, [&](int64_t lo, int64_t hi) {
    kernel(args, g.data<T>(), lo * block, std::min(C, hi * block), grad_nhwc.data<T>());
  });
  return detail::from_nhwc<T>(grad_nhwc, grad.dtype());
}

}  // namespace

Tensor roi_align(const Tensor& input, const Tensor& rois, double spatial_scale, int64_t pooled_height,
                 int64_t pooled_width, int64_t sampling_ratio, bool aligned, const Context& ctx) {
  (void)ctx;
  TVOPS_CHECK(input.defined() && input.dim() == 4, Value, "roi_align: input should be a 4d tensor [N, C, H, W], got ",
              input.defined() ? input.describe() : "undefined");
  TVOPS_CHECK(is_floating(input.dtype()), Type, "roi_align: input must be a floating point tensor, got ",
              dtype_name(input.dtype()));
  check_rois("roi_align", rois, input.dtype(), input.device());
  check_pooling("roi_align", pooled_height, pooled_width);
  TVOPS_CHECK(input.device().is_cpu(), Unsupported, "roi_align: CUDA kernels are not in this build yet");
  const int64_t K = rois.size(0), C = input.size(1);
  if (K == 0 || C == 0 || input.numel() == 0) {
    TVOPS_CHECK(K == 0 || input.size(0) > 0, Value, "roi_align: rois given for an empty batch");
    return Tensor::zeros({K, C, pooled_height, pooled_width}, input.dtype());
  }
  const cpu::KernelTable& k = detail::cpu_kernels();
  if (input.dtype() == DType::Float64)
    return forward_typed<double>(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned,
                                 k.roi_align_forward_f64);
  return forward_typed<float>(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned,
                              k.roi_align_forward_f32);
}

Tensor roi_align_backward(const Tensor& grad, const Tensor& rois, double spatial_scale, int64_t pooled_height,
                          int64_t pooled_width, int64_t batch, int64_t channels, int64_t height, int64_t width,
                          int64_t sampling_ratio, bool aligned, const Context& ctx) {
  (void)ctx;
  const char* op = "roi_align_backward";
  TVOPS_CHECK(grad.defined() && is_floating(grad.dtype()), Type, op, ": grad must be a floating point tensor");
  check_rois(op, rois, grad.dtype(), grad.device());
  check_pooling(op, pooled_height, pooled_width);
  TVOPS_CHECK(batch >= 0 && channels >= 0 && height >= 0 && width >= 0, Value, op,
              ": input sizes must be non-negative");
  TVOPS_CHECK(grad.dim() == 4 && grad.size(0) == rois.size(0) && grad.size(1) == channels &&
                  grad.size(2) == pooled_height && grad.size(3) == pooled_width,
              Value, op, ": grad should be [K, C, PH, PW] = [", rois.size(0), ", ", channels, ", ", pooled_height,
              ", ", pooled_width, "], got ", grad.describe());
  TVOPS_CHECK(grad.device().is_cpu(), Unsupported, op, ": CUDA kernels are not in this build yet");
  if (grad.numel() == 0 || batch * channels * height * width == 0)
    return Tensor::zeros({batch, channels, height, width}, grad.dtype());
  const cpu::KernelTable& k = detail::cpu_kernels();
  if (grad.dtype() == DType::Float64)
    return backward_typed<double>(grad, rois, spatial_scale, pooled_height, pooled_width, batch, channels, height,
                                  width, sampling_ratio, aligned, k.roi_align_backward_f64);
  return backward_typed<float>(grad, rois, spatial_scale, pooled_height, pooled_width, batch, channels, height,
                               width, sampling_ratio, aligned, k.roi_align_backward_f32);
}

}  // namespace tvops
