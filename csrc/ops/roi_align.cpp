// roi_align front-end: torchvision's checks, a channels-last view of the feature map
// (copied only when the input is not channels-last already), RoIs spread over the
// thread pool for the forward and channel blocks for the backward (no atomics, so it
// is deterministic).
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "dispatch/cpu_isa.h"
#include "ops/roi_common.h"
#include "tvops/ops.h"
#include "tvops/runtime.h"

#if defined(TVOPS_WITH_CUDA)
#include "kernels/cuda/ops.h"
#endif

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

// float16 / bfloat16 maps stay 16-bit (half the bytes to copy and read); the kernel
// computes in float32 exactly as on the upcast map.
Tensor forward_half(const Tensor& input, const Tensor& rois_in, double spatial_scale, int64_t ph, int64_t pw,
                    int64_t sampling_ratio, bool aligned, cpu::RoiAlignForwardHalf kernel) {
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const Tensor rois = checked_rois<float>("roi_align", rois_in, N);
  const bool direct = detail::is_channels_last(input);
  const Tensor nhwc = direct ? input : detail::to_nhwc<uint16_t>(input);
  const int64_t K = rois.size(0);
  Tensor out = Tensor::empty({K, C, ph, pw}, DType::Float32);
  auto args = make_args<float>(rois, C, H, W, ph, pw, sampling_ratio, spatial_scale, aligned);
  const std::vector<int64_t> order = detail::spatial_order<float>(rois, spatial_scale);
  args.order = order.data();
  const bool bf16 = input.dtype() == DType::BFloat16;
  detail::parallel_for(0, K, 1, [&](int64_t lo, int64_t hi) {
    kernel(args, nhwc.data<uint16_t>(), bf16, lo, hi, out.data<float>());
  });
  return detail::result_as(out, input.dtype());
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

// The RoIs of each level in increasing index order (the order torchvision's per-level
// calls visit them). Levels past the last map select no map: torchvision's
// MultiScaleRoIAlign leaves those rows zero (its level range can exceed the maps given).
// CUDA levels are read on the device: they must be int64 there already.
void check_cuda_levels(const char* op, const Tensor& levels, const Tensor& rois) {
  TVOPS_CHECK(levels.defined() && levels.dim() == 1 && levels.size(0) == rois.size(0) &&
                  levels.dtype() == DType::Int64,
              Value, op, ": levels should be an int64 tensor [", rois.size(0), "], got ",
              levels.defined() ? levels.describe() : "undefined");
  TVOPS_CHECK(levels.device() == rois.device(), Device, op, ": levels must be on the rois' device (",
              device_name(rois.device()), "), got ", device_name(levels.device()));
}

std::vector<std::vector<int64_t>> rois_per_level(const char* op, const Tensor& levels, int64_t K, int64_t L) {
  TVOPS_CHECK(levels.defined() && levels.dim() == 1 && levels.size(0) == K && !is_floating(levels.dtype()), Value,
              op, ": levels should be an integer tensor [", K, "], got ",
              levels.defined() ? levels.describe() : "undefined");
  const Tensor lv = levels.to(DType::Int64);
  std::vector<std::vector<int64_t>> members(L);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t l = lv.data<int64_t>()[k];
    TVOPS_CHECK(l >= 0, Value, op, ": levels[", k, "] = ", l, " is negative");
    if (l < L) members[l].push_back(k);
  }
  return members;
}

}  // namespace

Tensor multi_scale_roi_align(const std::vector<Tensor>& features, const std::vector<double>& scales,
                             const Tensor& rois, const Tensor& levels, int64_t pooled_height, int64_t pooled_width,
                             int64_t sampling_ratio, bool aligned, const Context& ctx) {
  (void)ctx;  // used by the CUDA path only
  const char* op = "multi_scale_roi_align";
  TVOPS_CHECK(!features.empty() && features.size() == scales.size(), Value, op, ": need one scale per feature map (",
              features.size(), " maps, ", scales.size(), " scales)");
  const Tensor& f0 = features[0];
  for (std::size_t l = 0; l < features.size(); ++l) {
    const Tensor& f = features[l];
    TVOPS_CHECK(f.defined() && f.dim() == 4 && f.size(0) == f0.size(0) && f.size(1) == f0.size(1), Value, op,
                ": feature maps should be [N, C, H, W] with the same N and C, got ", f.describe(), " for level ", l);
    TVOPS_CHECK(f.dtype() == f0.dtype() && is_floating(f.dtype()), Type, op,
                ": feature maps should share one floating dtype, got ", dtype_name(f.dtype()), " for level ", l);
    TVOPS_CHECK(f.device() == f0.device(), Device, op, ": feature maps should be on one device, got ",
                device_name(f.device()), " for level ", l, " and ", device_name(f0.device()), " for level 0");
  }
  check_rois(op, rois, f0.dtype(), f0.device());
  check_pooling(op, pooled_height, pooled_width);
  if (f0.device().is_cuda()) {
    check_cuda_levels(op, levels, rois);
    detail::require_cuda(op, f0.device());
#if defined(TVOPS_WITH_CUDA)
    return cuda::multi_scale_roi_align(features, scales, rois, levels, pooled_height, pooled_width, sampling_ratio,
                                       aligned, ctx);
#endif
  }
  const int64_t K = rois.size(0), N = f0.size(0), C = f0.size(1), L = int64_t(features.size());
  const auto members = rois_per_level(op, levels, K, L);
  if (K == 0 || C == 0) return Tensor::zeros({K, C, pooled_height, pooled_width}, f0.dtype());
  const cpu::KernelTable& kt = detail::cpu_kernels();
  auto run = [&](auto tag, auto kernel) {
    using T = decltype(tag);
    const Tensor r = checked_rois<T>(op, rois, N);
    Tensor out = Tensor::zeros({K, C, pooled_height, pooled_width}, compute_dtype(f0.dtype()));
    // One work list over all levels: RoIs of level l are order[start[l] .. start[l+1]),
    // each level's sorted spatially; the pool splits the whole list.
    std::vector<Tensor> maps(L);
    std::vector<cpu::RoiArgs<T>> args;
    std::vector<int64_t> order, start = {0};
    for (int64_t l = 0; l < L; ++l) {
      const Tensor& f = features[l];
      const bool direct = detail::is_channels_last(f) && f.dtype() == compute_dtype(f.dtype());
      maps[l] = direct ? f : detail::to_nhwc<T>(f);
      args.push_back(make_args<T>(r, C, f.size(2), f.size(3), pooled_height, pooled_width, sampling_ratio,
                                  scales[l], aligned));
      order.insert(order.end(), members[l].begin(), members[l].end());
      start.push_back(int64_t(order.size()));
    }
    for (int64_t l = 0; l < L; ++l) args[l].order = order.data();
    detail::parallel_for(0, start[L], 1, [&](int64_t lo, int64_t hi) {
      for (int64_t l = 0; l < L; ++l) {
        const int64_t a = std::max(lo, start[l]), b = std::min(hi, start[l + 1]);
        if (a < b) kernel(args[l], maps[l].template data<T>(), a, b, out.data<T>());
      }
    });
    return out.to(f0.dtype());
  };
  if (f0.dtype() == DType::Float64) return run(double{}, kt.roi_align_forward_f64);
  return run(float{}, kt.roi_align_forward_f32);
}

std::vector<Tensor> multi_scale_roi_align_backward(const Tensor& grad, const Tensor& rois, const Tensor& levels,
                                                   const std::vector<double>& scales,
                                                   const std::vector<std::vector<int64_t>>& shapes,
                                                   int64_t sampling_ratio, bool aligned, bool deterministic,
                                                   const Context& ctx) {
  (void)ctx;  // used by the CUDA path only
  const char* op = "multi_scale_roi_align_backward";
  TVOPS_CHECK(!shapes.empty() && shapes.size() == scales.size(), Value, op, ": need one scale per feature map");
  TVOPS_CHECK(grad.defined() && grad.dim() == 4 && is_floating(grad.dtype()), Value, op,
              ": grad should be a floating [K, C, PH, PW] tensor");
  check_rois(op, rois, grad.dtype(), grad.device());
  const int64_t K = rois.size(0), L = int64_t(shapes.size());
  for (const auto& s : shapes)
    TVOPS_CHECK(s.size() == 4 && s[1] == grad.size(1) && s[0] == shapes[0][0] && s[2] >= 0 && s[3] >= 0, Value, op,
                ": feature shapes should be [N, C, H, W] with the grad's C");
  TVOPS_CHECK(grad.size(0) == K, Value, op, ": grad has ", grad.size(0), " RoIs, rois ", K);
  if (grad.device().is_cuda()) {
    check_cuda_levels(op, levels, rois);
    detail::require_cuda(op, grad.device());
#if defined(TVOPS_WITH_CUDA)
    return cuda::multi_scale_roi_align_backward(grad, rois, levels, scales, shapes, sampling_ratio, aligned,
                                                deterministic, ctx);
#endif
  }
  const auto members = rois_per_level(op, levels, K, L);
  std::vector<Tensor> grads;
  for (int64_t l = 0; l < L; ++l) {
    const auto& s = shapes[l];
    if (members[l].empty()) {
      grads.push_back(Tensor::zeros(s, grad.dtype()));
      continue;
    }
    // Each level is roi_align_backward over its RoIs, in index order.
    std::vector<int64_t> idx = members[l];
    Tensor sub_rois = Tensor::empty({int64_t(idx.size()), 5}, rois.dtype());
    Tensor sub_grad = Tensor::empty({int64_t(idx.size()), grad.size(1), grad.size(2), grad.size(3)}, grad.dtype());
    const Tensor rc = rois.contiguous(), gc = grad.contiguous();
    const std::size_t roi_bytes = 5 * dtype_size(rois.dtype()), grad_bytes = gc.nbytes() / std::max<int64_t>(K, 1);
    for (std::size_t i = 0; i < idx.size(); ++i) {
      std::memcpy(static_cast<char*>(sub_rois.data_ptr()) + i * roi_bytes,
                  static_cast<const char*>(rc.data_ptr()) + idx[i] * roi_bytes, roi_bytes);
      std::memcpy(static_cast<char*>(sub_grad.data_ptr()) + i * grad_bytes,
                  static_cast<const char*>(gc.data_ptr()) + idx[i] * grad_bytes, grad_bytes);
    }
    grads.push_back(roi_align_backward(sub_grad, sub_rois, scales[l], grad.size(2), grad.size(3), s[0], s[1], s[2],
                                       s[3], sampling_ratio, aligned, deterministic));
  }
  return grads;
}

Tensor roi_align(const Tensor& input, const Tensor& rois, double spatial_scale, int64_t pooled_height,
                 int64_t pooled_width, int64_t sampling_ratio, bool aligned, const Context& ctx) {
  (void)ctx;  // used by the CUDA path only
  TVOPS_CHECK(input.defined() && input.dim() == 4, Value, "roi_align: input should be a 4d tensor [N, C, H, W], got ",
              input.defined() ? input.describe() : "undefined");
  TVOPS_CHECK(is_floating(input.dtype()), Type, "roi_align: input must be a floating point tensor, got ",
              dtype_name(input.dtype()));
  check_rois("roi_align", rois, input.dtype(), input.device());
  check_pooling("roi_align", pooled_height, pooled_width);
  if (input.device().is_cuda()) {
    detail::require_cuda("roi_align", input.device());
#if defined(TVOPS_WITH_CUDA)
    return cuda::roi_align(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned, ctx);
#endif
  }
  const int64_t K = rois.size(0), C = input.size(1);
  if (K == 0 || C == 0 || input.numel() == 0) {
    TVOPS_CHECK(K == 0 || input.size(0) > 0, Value, "roi_align: rois given for an empty batch");
    return Tensor::zeros({K, C, pooled_height, pooled_width}, input.dtype());
  }
  const cpu::KernelTable& k = detail::cpu_kernels();
  if (input.dtype() == DType::Float64)
    return forward_typed<double>(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned,
                                 k.roi_align_forward_f64);
  if (input.dtype() == DType::Float16 || input.dtype() == DType::BFloat16)
    return forward_half(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned,
                        k.roi_align_forward_half);
  return forward_typed<float>(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned,
                              k.roi_align_forward_f32);
}

Tensor roi_align_quint8(const Tensor& input, int64_t zero_point, const Tensor& rois_in, double spatial_scale,
                        int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio, bool aligned,
                        const Context& ctx) {
  (void)ctx;
  const char* op = "roi_align_quint8";
  TVOPS_CHECK(input.defined() && input.dim() == 4, Value, op, ": input should be a 4d tensor [N, C, H, W], got ",
              input.defined() ? input.describe() : "undefined");
  TVOPS_CHECK(input.dtype() == DType::UInt8, Type, op, ": input should hold quint8 values as uint8, got ",
              dtype_name(input.dtype()));
  TVOPS_CHECK(zero_point >= 0 && zero_point <= 255, Value, op, ": zero_point should be in [0, 255], got ",
              zero_point);
  check_rois(op, rois_in, DType::Float32, input.device());
  check_pooling(op, pooled_height, pooled_width);
  TVOPS_CHECK(input.device().is_cpu(), Unsupported, op, ": quantized tensors are CPU tensors");
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3), K = rois_in.size(0);
  if (K == 0 || C == 0 || input.numel() == 0) {
    TVOPS_CHECK(K == 0 || N > 0, Value, op, ": rois given for an empty batch");
    Tensor out = Tensor::empty({K, C, pooled_height, pooled_width}, DType::UInt8);
    std::memset(out.data_ptr(), static_cast<int>(zero_point), out.nbytes());  // empty maps average to 0
    return out;
  }
  const Tensor rois = checked_rois<float>(op, rois_in, N);
  const Tensor nhwc = detail::to_nhwc<uint8_t>(input);
  Tensor out = Tensor::empty({K, C, pooled_height, pooled_width}, DType::UInt8);
  auto args = make_args<float>(rois, C, H, W, pooled_height, pooled_width, sampling_ratio, spatial_scale, aligned);
  const std::vector<int64_t> order = detail::spatial_order<float>(rois, spatial_scale);
  args.order = order.data();
  const cpu::RoiAlignForwardU8 kernel = detail::cpu_kernels().roi_align_forward_u8;
  detail::parallel_for(0, K, 1, [&](int64_t lo, int64_t hi) {
    kernel(args, nhwc.data<uint8_t>(), static_cast<int32_t>(zero_point), lo, hi, out.data<uint8_t>());
  });
  return out;
}

Tensor roi_align_backward(const Tensor& grad, const Tensor& rois, double spatial_scale, int64_t pooled_height,
                          int64_t pooled_width, int64_t batch, int64_t channels, int64_t height, int64_t width,
                          int64_t sampling_ratio, bool aligned, bool deterministic, const Context& ctx) {
  (void)ctx;  // used by the CUDA path only
  const char* op = "roi_align_backward";
  (void)deterministic;  // CUDA only: the CPU backward is always deterministic
  TVOPS_CHECK(grad.defined() && is_floating(grad.dtype()), Type, op, ": grad must be a floating point tensor");
  check_rois(op, rois, grad.dtype(), grad.device());
  check_pooling(op, pooled_height, pooled_width);
  TVOPS_CHECK(batch >= 0 && channels >= 0 && height >= 0 && width >= 0, Value, op,
              ": input sizes must be non-negative");
  TVOPS_CHECK(grad.dim() == 4 && grad.size(0) == rois.size(0) && grad.size(1) == channels &&
                  grad.size(2) == pooled_height && grad.size(3) == pooled_width,
              Value, op, ": grad should be [K, C, PH, PW] = [", rois.size(0), ", ", channels, ", ", pooled_height,
              ", ", pooled_width, "], got ", grad.describe());
  if (grad.device().is_cuda()) {
    detail::require_cuda(op, grad.device());
#if defined(TVOPS_WITH_CUDA)
    return cuda::roi_align_backward(grad, rois, spatial_scale, pooled_height, pooled_width, batch, channels, height,
                                    width, sampling_ratio, aligned, deterministic, ctx);
#endif
  }
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
