// roi_pool, ps_roi_align and ps_roi_pool front-ends: torchvision's checks, then the
// kernels spread over the pool (forward over RoIs, backward over channel ranges, so
// the backward needs no atomics and sums in torchvision's order).
#include <atomic>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "dispatch/cpu_isa.h"
#include "ops/roi_common.h"
#include "tvops/ops.h"

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

void check_input(const char* op, const Tensor& input, const Tensor& rois, int64_t ph, int64_t pw) {
  TVOPS_CHECK(input.defined() && input.dim() == 4, Value, op, ": input should be a 4d tensor [N, C, H, W], got ",
              input.defined() ? input.describe() : "undefined");
  TVOPS_CHECK(is_floating(input.dtype()), Type, op, ": input must be a floating point tensor, got ",
              dtype_name(input.dtype()));
  check_rois(op, rois, input.dtype(), input.device());
  check_pooling(op, ph, pw);
  if (input.device().is_cuda()) detail::require_cuda(op, input.device());
}

void check_backward(const char* op, const Tensor& grad, const Tensor& rois, const Tensor& index, int64_t ph,
                    int64_t pw, int64_t c_out, int64_t batch, int64_t channels, int64_t height, int64_t width) {
  TVOPS_CHECK(grad.defined() && is_floating(grad.dtype()), Type, op, ": grad must be a floating point tensor");
  check_rois(op, rois, grad.dtype(), grad.device());
  check_pooling(op, ph, pw);
  TVOPS_CHECK(batch >= 0 && channels >= 0 && height >= 0 && width >= 0, Value, op,
              ": input sizes must be non-negative");
  const std::vector<int64_t> shape = {rois.size(0), c_out, ph, pw};
  TVOPS_CHECK(grad.dim() == 4 && grad.sizes() == shape, Value, op, ": grad should be [", shape[0], ", ", shape[1],
              ", ", ph, ", ", pw, "], got ", grad.describe());
  TVOPS_CHECK(index.defined() && index.sizes() == shape && index.dtype() == DType::Int32, Value, op,
              ": the int32 index tensor of the forward should be [", shape[0], ", ", shape[1], ", ", ph, ", ", pw,
              "], got ", index.defined() ? index.describe() : "undefined");
  TVOPS_CHECK(index.device() == grad.device(), Device, op, ": the index tensor must be on the grad's device (",
              device_name(grad.device()), "), got ", device_name(index.device()));
  if (grad.device().is_cuda()) detail::require_cuda(op, grad.device());
}

int64_t ps_channels_out(const char* op, int64_t channels, int64_t ph, int64_t pw) {
  TVOPS_CHECK(channels % (ph * pw) == 0, Value, op,
              ": input channels must be a multiple of pooling height * pooling width, got ", channels, " for ",
              ph, "x", pw);
  return channels / (ph * pw);
}

// The c_in of each output: (c_out * PH + ph) * PW + pw, the same for every RoI.
Tensor channel_mapping(int64_t K, int64_t c_out, int64_t ph, int64_t pw) {
  Tensor m = Tensor::empty({K, c_out, ph, pw}, DType::Int32);
  int32_t* p = m.data<int32_t>();
  const int64_t per_roi = c_out * ph * pw;
  if (K == 0) return m;
  for (int64_t i = 0; i < per_roi; ++i) p[i] = static_cast<int32_t>(i);
  for (int64_t k = 1; k < K; ++k) std::memcpy(p + k * per_roi, p, static_cast<std::size_t>(per_roi) * 4);
  return m;
}

template <typename T>
std::pair<Tensor, Tensor> roi_pool_typed(const Tensor& input, const Tensor& rois_in, double scale, int64_t ph,
                                         int64_t pw, cpu::RoiPoolForward<T> kernel) {
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const Tensor rois = checked_rois<T>("roi_pool", rois_in, N);
  const bool direct = detail::is_channels_last(input) && input.dtype() == compute_dtype(input.dtype());
  const Tensor nhwc = direct ? input : detail::to_nhwc<T>(input);
  const int64_t K = rois.size(0);
  Tensor out = Tensor::empty({K, C, ph, pw}, compute_dtype(input.dtype()));
  Tensor argmax = Tensor::empty({K, C, ph, pw}, DType::Int32);
  auto args = make_args<T>(rois, C, H, W, ph, pw, 0, scale, false);
  const std::vector<int64_t> order = detail::spatial_order<T>(rois, scale);
  args.order = order.data();
  const T* base = direct ? input.data<T>() : nhwc.data<T>();
  detail::parallel_for(0, K, 1, [&](int64_t lo, int64_t hi) {
    kernel(args, base, lo, hi, out.data<T>(), argmax.data<int32_t>());
  });
  return {out.to(input.dtype()), argmax};
}

template <typename T>
Tensor roi_pool_backward_typed(const Tensor& grad, const Tensor& rois_in, const Tensor& argmax_in, int64_t N,
                               int64_t C, int64_t H, int64_t W, int64_t ph, int64_t pw,
                               cpu::RoiPoolBackward<T> kernel) {
  const Tensor rois = checked_rois<T>("roi_pool_backward", rois_in, N);
  const Tensor g = grad.to(compute_dtype(grad.dtype())).contiguous();
  const Tensor argmax = argmax_in.contiguous();
  const int32_t* a = argmax.data<int32_t>();
  // Each worker zeroes a channel's N planes just before scattering into them, so the
  // planes are written once, in cache, and no separate memset pass runs.
  Tensor gi = Tensor::empty({N, C, H, W}, g.dtype());
  T* out = gi.data<T>();
  const auto args = make_args<T>(rois, C, H, W, ph, pw, 0, 0.0, false);
  std::atomic<bool> in_range{true};
  detail::parallel_for(0, C, 8, [&](int64_t lo, int64_t hi) {
    bool ok = true;
    for (int64_t c = lo; c < hi; ++c) {
      for (int64_t n = 0; n < N; ++n) std::memset(out + (n * C + c) * H * W, 0, sizeof(T) * H * W);
      ok &= kernel(args, g.data<T>(), a, c, c + 1, out);
    }
    if (!ok) in_range = false;
  });
  // Indices come from the caller; the kernel skipped bad ones: name the first.
  if (!in_range)
    for (int64_t i = 0, count = argmax.numel(); i < count; ++i)
      TVOPS_CHECK(a[i] >= -1 && a[i] < H * W, Value, "roi_pool_backward: argmax value ", a[i], " is outside the ",
                  H, "x", W, " plane");
  return gi.to(grad.dtype());
}

template <typename T>
std::pair<Tensor, Tensor> ps_forward_typed(const char* op, const Tensor& input, const Tensor& rois_in, double scale,
                                           int64_t ph, int64_t pw, int64_t sampling_ratio,
                                           cpu::PsRoiForward<T> kernel) {
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t c_out = ps_channels_out(op, C, ph, pw);
  const Tensor rois = checked_rois<T>(op, rois_in, N);
  const Tensor x = input.to(compute_dtype(input.dtype())).contiguous();
  const int64_t K = rois.size(0);
  Tensor out = Tensor::empty({K, c_out, ph, pw}, x.dtype());
  const auto args = make_args<T>(rois, C, H, W, ph, pw, sampling_ratio, scale, true);
  detail::parallel_for(0, K, 1, [&](int64_t lo, int64_t hi) { kernel(args, x.data<T>(), lo, hi, out.data<T>()); });
  return {out.to(input.dtype()), channel_mapping(K, c_out, ph, pw)};
}

template <typename T>
Tensor ps_backward_typed(const char* op, const Tensor& grad, const Tensor& rois_in, double scale, int64_t ph,
                         int64_t pw, int64_t sampling_ratio, int64_t N, int64_t C, int64_t H, int64_t W,
                         cpu::PsRoiBackward<T> kernel) {
  const int64_t c_out = C / (ph * pw);
  const Tensor rois = checked_rois<T>(op, rois_in, N);
  const Tensor g = grad.to(compute_dtype(grad.dtype())).contiguous();
  Tensor gi = Tensor::empty({N, C, H, W}, g.dtype());
  T* out = gi.data<T>();
  const auto args = make_args<T>(rois, C, H, W, ph, pw, sampling_ratio, scale, true);
  // Output channel co owns input planes [co * ph * pw, (co + 1) * ph * pw): its worker
  // zeroes them just before scattering (one write, in cache, spread over threads).
  const int64_t planes = ph * pw;
  detail::parallel_for(0, c_out, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t n = 0; n < N; ++n)
      std::memset(out + (n * C + lo * planes) * H * W, 0, sizeof(T) * (hi - lo) * planes * H * W);
    kernel(args, g.data<T>(), lo, hi, out);
  });
  return gi.to(grad.dtype());
}

bool use_f64(const Tensor& t) { return t.dtype() == DType::Float64; }

}  // namespace

std::pair<Tensor, Tensor> roi_pool(const Tensor& input, const Tensor& rois, double spatial_scale,
                                   int64_t pooled_height, int64_t pooled_width, const Context& ctx) {
  (void)ctx;  // used by the CUDA path only
  check_input("roi_pool", input, rois, pooled_height, pooled_width);
#if defined(TVOPS_WITH_CUDA)
  if (input.device().is_cuda()) return cuda::roi_pool(input, rois, spatial_scale, pooled_height, pooled_width, ctx);
#endif
  const int64_t K = rois.size(0), C = input.size(1);
  if (K * C == 0 || input.numel() == 0) {
    Tensor argmax = Tensor::empty({K, C, pooled_height, pooled_width}, DType::Int32);
    std::memset(argmax.data_ptr(), 0, argmax.nbytes());
    return {Tensor::zeros({K, C, pooled_height, pooled_width}, input.dtype()), argmax};
  }
  const cpu::KernelTable& k = detail::cpu_kernels();
  // float32 keeps argmax in float lanes: exact below 2^24 pixels a plane, else use float64.
  if (use_f64(input) || input.size(2) * input.size(3) >= (int64_t(1) << 24)) {
    auto r = roi_pool_typed<double>(input.to(DType::Float64), rois.to(DType::Float64), spatial_scale,
                                    pooled_height, pooled_width, k.roi_pool_forward_f64);
    return {r.first.to(input.dtype()), r.second};
  }
  return roi_pool_typed<float>(input, rois, spatial_scale, pooled_height, pooled_width, k.roi_pool_forward_f32);
}

Tensor roi_pool_backward(const Tensor& grad, const Tensor& rois, const Tensor& argmax, double spatial_scale,
                         int64_t pooled_height, int64_t pooled_width, int64_t batch, int64_t channels, int64_t height,
                         int64_t width, bool deterministic, const Context& ctx) {
  (void)ctx;  // used by the CUDA path only
  (void)spatial_scale;  // the argmax already says where each gradient goes
  check_backward("roi_pool_backward", grad, rois, argmax, pooled_height, pooled_width, channels, batch, channels,
                 height, width);
#if defined(TVOPS_WITH_CUDA)
  if (grad.device().is_cuda())
    return cuda::roi_pool_backward(grad, rois, argmax, pooled_height, pooled_width, batch, channels, height, width,
                                   deterministic, ctx);
#else
  (void)deterministic;
#endif
  if (grad.numel() == 0 || batch * channels * height * width == 0)
    return Tensor::zeros({batch, channels, height, width}, grad.dtype());
  const cpu::KernelTable& k = detail::cpu_kernels();
  if (use_f64(grad))
    return roi_pool_backward_typed<double>(grad, rois, argmax, batch, channels, height, width, pooled_height,
                                           pooled_width, k.roi_pool_backward_f64);
  return roi_pool_backward_typed<float>(grad, rois, argmax, batch, channels, height, width, pooled_height,
                                        pooled_width, k.roi_pool_backward_f32);
}

std::pair<Tensor, Tensor> ps_roi_align(const Tensor& input, const Tensor& rois, double spatial_scale,
                                       int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                                       const Context& ctx) {
  (void)ctx;  // used by the CUDA path only
  check_input("ps_roi_align", input, rois, pooled_height, pooled_width);
  const int64_t c_out = ps_channels_out("ps_roi_align", input.size(1), pooled_height, pooled_width);
#if defined(TVOPS_WITH_CUDA)
  if (input.device().is_cuda())
    return cuda::ps_roi_align(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, ctx);
#endif
  const int64_t K = rois.size(0);
  if (K * c_out == 0 || input.numel() == 0)
    return {Tensor::zeros({K, c_out, pooled_height, pooled_width}, input.dtype()),
            channel_mapping(K, c_out, pooled_height, pooled_width)};
  const cpu::KernelTable& k = detail::cpu_kernels();
  if (use_f64(input))
    return ps_forward_typed<double>("ps_roi_align", input, rois, spatial_scale, pooled_height, pooled_width,
                                    sampling_ratio, k.ps_roi_align_forward_f64);
  return ps_forward_typed<float>("ps_roi_align", input, rois, spatial_scale, pooled_height, pooled_width,
                                 sampling_ratio, k.ps_roi_align_forward_f32);
}

Tensor ps_roi_align_backward(const Tensor& grad, const Tensor& rois, const Tensor& channel_mapping,
                             double spatial_scale, int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                             int64_t batch, int64_t channels, int64_t height, int64_t width, bool deterministic,
                             const Context& ctx) {
  (void)ctx;  // used by the CUDA path only
  const char* op = "ps_roi_align_backward";
  const int64_t c_out = ps_channels_out(op, channels, pooled_height, pooled_width);
  check_backward(op, grad, rois, channel_mapping, pooled_height, pooled_width, c_out, batch, channels, height, width);
#if defined(TVOPS_WITH_CUDA)
  // The mapping is (c_out * PH + ph) * PW + pw by construction: the kernel recomputes it.
  if (grad.device().is_cuda())
    return cuda::ps_roi_align_backward(grad, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, batch,
                                       channels, height, width, deterministic, ctx);
#else
  (void)deterministic;
#endif
  if (grad.numel() == 0 || batch * channels * height * width == 0)
    return Tensor::zeros({batch, channels, height, width}, grad.dtype());
  const cpu::KernelTable& k = detail::cpu_kernels();
  if (use_f64(grad))
    return ps_backward_typed<double>(op, grad, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio,
                                     batch, channels, height, width, k.ps_roi_align_backward_f64);
  return ps_backward_typed<float>(op, grad, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, batch,
                                  channels, height, width, k.ps_roi_align_backward_f32);
}

std::pair<Tensor, Tensor> ps_roi_pool(const Tensor& input, const Tensor& rois, double spatial_scale,
                                      int64_t pooled_height, int64_t pooled_width, const Context& ctx) {
  (void)ctx;  // used by the CUDA path only
  check_input("ps_roi_pool", input, rois, pooled_height, pooled_width);
  const int64_t c_out = ps_channels_out("ps_roi_pool", input.size(1), pooled_height, pooled_width);
#if defined(TVOPS_WITH_CUDA)
  if (input.device().is_cuda()) return cuda::ps_roi_pool(input, rois, spatial_scale, pooled_height, pooled_width, ctx);
#endif
  const int64_t K = rois.size(0);
  if (K * c_out == 0 || input.numel() == 0)
    return {Tensor::zeros({K, c_out, pooled_height, pooled_width}, input.dtype()),
            channel_mapping(K, c_out, pooled_height, pooled_width)};
  const cpu::KernelTable& k = detail::cpu_kernels();
  if (use_f64(input))
    return ps_forward_typed<double>("ps_roi_pool", input, rois, spatial_scale, pooled_height, pooled_width, 0,
                                    k.ps_roi_pool_forward_f64);
  return ps_forward_typed<float>("ps_roi_pool", input, rois, spatial_scale, pooled_height, pooled_width, 0,
                                 k.ps_roi_pool_forward_f32);
}

Tensor ps_roi_pool_backward(const Tensor& grad, const Tensor& rois, const Tensor& channel_mapping,
                            double spatial_scale, int64_t pooled_height, int64_t pooled_width, int64_t batch,
                            int64_t channels, int64_t height, int64_t width, bool deterministic,
                            const Context& ctx) {
  (void)ctx;  // used by the CUDA path only
  const char* op = "ps_roi_pool_backward";
  const int64_t c_out = ps_channels_out(op, channels, pooled_height, pooled_width);
  check_backward(op, grad, rois, channel_mapping, pooled_height, pooled_width, c_out, batch, channels, height, width);
#if defined(TVOPS_WITH_CUDA)
  if (grad.device().is_cuda())
    return cuda::ps_roi_pool_backward(grad, rois, spatial_scale, pooled_height, pooled_width, batch, channels, height,
                                      width, deterministic, ctx);
#else
  (void)deterministic;
#endif
  if (grad.numel() == 0 || batch * channels * height * width == 0)
    return Tensor::zeros({batch, channels, height, width}, grad.dtype());
  const cpu::KernelTable& k = detail::cpu_kernels();
  if (use_f64(grad))
    return ps_backward_typed<double>(op, grad, rois, spatial_scale, pooled_height, pooled_width, 0, batch, channels,
                                     height, width, k.ps_roi_pool_backward_f64);
  return ps_backward_typed<float>(op, grad, rois, spatial_scale, pooled_height, pooled_width, 0, batch, channels,
                                  height, width, k.ps_roi_pool_backward_f32);
}

}  // namespace tvops
