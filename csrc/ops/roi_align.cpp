// roi_align front-end: torchvision's checks, a channels-last view of the feature map
// (copied only when the input is not channels-last already), RoIs spread over the
// thread pool for the forward and channel blocks for the backward (no atomics, so it
// is deterministic).
#include <algorithm>
#include <cmath>
#include <tuple>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "dispatch/cpu_isa.h"
#include "tvops/ops.h"

namespace tvops {

namespace {

DType compute_dtype(DType d) { return d == DType::Float64 ? DType::Float64 : DType::Float32; }

bool is_channels_last(const Tensor& t) {
  const int64_t C = t.size(1), H = t.size(2), W = t.size(3);
  return t.stride(1) == 1 && t.stride(3) == C && t.stride(2) == W * C && (t.size(0) == 1 || t.stride(0) == H * W * C);
}

// NCHW (any strides) -> contiguous NHWC of T. Channel blocks of 16 keep the reads in a
// few streams and the writes contiguous.
template <typename T>
Tensor to_nhwc(const Tensor& input) {
  const Tensor src = input.to(compute_dtype(input.dtype()));
  const int64_t N = src.size(0), C = src.size(1), H = src.size(2), W = src.size(3);
  Tensor out = Tensor::empty({N, H, W, C}, src.dtype());
  const T* s = src.data<T>();
  T* d = out.data<T>();
  const int64_t sn = src.stride(0), sc = src.stride(1), sh = src.stride(2), sw = src.stride(3);
  detail::parallel_for(0, N * H, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t n = row / H, h = row % H;
      const T* in = s + n * sn + h * sh;
      T* o = d + row * W * C;
      for (int64_t c0 = 0; c0 < C; c0 += 16) {
        const int64_t c1 = std::min(C, c0 + 16);
        for (int64_t w = 0; w < W; ++w)
          for (int64_t c = c0; c < c1; ++c) o[w * C + c] = in[c * sc + w * sw];
      }
    }
  });
  return out;
}

// Contiguous NHWC of T -> contiguous NCHW of `dtype`.
template <typename T>
Tensor from_nhwc(const Tensor& nhwc, DType dtype) {
  const int64_t N = nhwc.size(0), H = nhwc.size(1), W = nhwc.size(2), C = nhwc.size(3);
  Tensor out = Tensor::empty({N, C, H, W}, nhwc.dtype());
  const T* s = nhwc.data<T>();
  T* d = out.data<T>();
  // Tiles of 64 pixels x all channels (64 KB for C=256) stay in L2 while their
  // channels are written out as 64-pixel runs.
  const int64_t HW = H * W, tile = 64, tiles = (HW + tile - 1) / tile;
  detail::parallel_for(0, N * tiles, 4, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t n = t / tiles, p0 = (t % tiles) * tile, p1 = std::min(HW, p0 + tile);
      const T* in = s + n * HW * C;
      T* o = d + n * C * HW;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t p = p0; p < p1; ++p) o[c * HW + p] = in[p * C + c];
    }
  });
  return out.to(dtype);
}

void check_rois(const char* op, const Tensor& rois, DType dtype, Device device) {
  TVOPS_CHECK(rois.defined() && rois.dim() == 2 && rois.size(1) == 5, Value, op,
              ": rois must have shape as Tensor[K, 5], got ", rois.defined() ? rois.describe() : "undefined");
  TVOPS_CHECK(rois.dtype() == dtype, Type, op, ": Expected tensor for input to have the same type as tensor for rois; "
              "but type ", dtype_name(dtype), " does not equal ", dtype_name(rois.dtype()));
  TVOPS_CHECK(rois.device() == device, Device, op, ": input and rois must be on the same device, got ",
              device_name(device), " and ", device_name(rois.device()));
}

// RoIs as contiguous T, with every batch index checked (torchvision reads out of
// bounds on a bad one).
template <typename T>
Tensor checked_rois(const char* op, const Tensor& rois, int64_t batch) {
  Tensor r = rois.to(compute_dtype(rois.dtype())).contiguous();
  const T* p = r.data<T>();
  for (int64_t k = 0; k < r.size(0); ++k) {
    const T b = p[5 * k];  // used as int(b), truncating like torchvision
    TVOPS_CHECK(std::isfinite(b) && std::trunc(b) >= T(0) && std::trunc(b) < T(batch), Value, op, ": rois[", k,
                ", 0] = ", double(b), " is not a batch index of the input (", batch, " images)");
  }
  return r;
}

void check_pooling(const char* op, int64_t pooled_height, int64_t pooled_width) {
  TVOPS_CHECK(pooled_height > 0 && pooled_width > 0, Value, op, ": output size must be positive, got (",
              pooled_height, ", ", pooled_width, ")");
}

template <typename T>
cpu::RoiAlignArgs<T> make_args(const Tensor& rois, int64_t C, int64_t H, int64_t W, int64_t ph, int64_t pw,
                               int64_t sampling_ratio, double spatial_scale, bool aligned) {
  return cpu::RoiAlignArgs<T>{rois.data<T>(), nullptr, rois.size(0), C, H, W, ph, pw, sampling_ratio,
                              static_cast<T>(spatial_scale), aligned};
}

template <typename T>
Tensor forward_typed(const Tensor& input, const Tensor& rois_in, double spatial_scale, int64_t ph, int64_t pw,
                     int64_t sampling_ratio, bool aligned, cpu::RoiAlignForward<T> kernel) {
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const Tensor rois = checked_rois<T>("roi_align", rois_in, N);
  const bool direct = is_channels_last(input) && input.dtype() == compute_dtype(input.dtype());
  const Tensor nhwc = direct ? input : to_nhwc<T>(input);
  const T* base = direct ? input.data<T>() : nhwc.data<T>();
  const int64_t K = rois.size(0);
  Tensor out = Tensor::empty({K, C, ph, pw}, compute_dtype(input.dtype()));
  auto args = make_args<T>(rois, C, H, W, ph, pw, sampling_ratio, spatial_scale, aligned);
  // Visit RoIs image by image, top to bottom in bands, so neighbours share cached pixels.
  std::vector<int64_t> order(K);
  std::vector<std::pair<std::tuple<int64_t, int64_t, T>, int64_t>> keys(K);
  const T* r = rois.data<T>();
  for (int64_t k = 0; k < K; ++k) {
    // Non-finite coordinates sort as 0: NaN would break the sort's ordering.
    const T band = std::floor(r[5 * k + 2] * static_cast<T>(spatial_scale) / T(16)), x = r[5 * k + 1];
    keys[k] = {{static_cast<int64_t>(r[5 * k]),
                std::isfinite(band) && std::abs(band) < T(1e15) ? static_cast<int64_t>(band) : 0,
                std::isfinite(x) ? x : T(0)}, k};
  }
  std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return a.first < b.first;
  });
  for (int64_t k = 0; k < K; ++k) order[k] = keys[k].second;
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
  return from_nhwc<T>(grad_nhwc, grad.dtype());
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
