// Front-end pieces shared by the RoI operators (internal): argument checks, the
// channels-last copy of a feature map and back, kernel arguments, and the RoI visiting
// order that keeps neighbouring RoIs on cached pixels.
#pragma once

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include "core/check.h"
#include "ops/device_check.h"
#include "core/thread_pool.h"
#include "dispatch/cpu_isa.h"
#include "kernels/cpu/kernel_table.h"
#include "tvops/runtime.h"
#include "tvops/tensor.h"

namespace tvops::detail {

inline DType compute_dtype(DType d) { return d == DType::Float64 ? DType::Float64 : DType::Float32; }

inline bool is_channels_last(const Tensor& t) {
  const int64_t C = t.size(1), H = t.size(2), W = t.size(3);
  return t.stride(1) == 1 && t.stride(3) == C && t.stride(2) == W * C && (t.size(0) == 1 || t.stride(0) == H * W * C);
}

// NCHW (any strides) -> contiguous NHWC of T. Channel blocks of 16 keep the reads in a
// few streams and the writes contiguous.
// T = uint16_t keeps float16/bfloat16 maps in their own dtype (the kernels upcast);
// T = uint8_t moves quantized values.
template <typename T>
inline Tensor to_nhwc(const Tensor& input) {
  const Tensor src = sizeof(T) <= 2 ? input : input.to(compute_dtype(input.dtype()));
  const int64_t N = src.size(0), C = src.size(1), H = src.size(2), W = src.size(3);
  Tensor out = Tensor::empty({N, H, W, C}, src.dtype());
  const T* s = src.data<T>();
  T* d = out.data<T>();
  const int64_t sn = src.stride(0), sc = src.stride(1), sh = src.stride(2), sw = src.stride(3);
  if (sizeof(T) <= 4 && sw == 1 && sh == W) {  // channel planes contiguous: tiled transposes
    const cpu::KernelTable& k = cpu_kernels();
    const auto transpose = sizeof(T) == 4 ? k.transpose_32 : sizeof(T) == 2 ? k.transpose_16 : k.transpose_8;
    const int64_t HW = H * W, block = 1024, blocks = (HW + block - 1) / block;
    parallel_for(0, N * blocks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t n = t / blocks, p0 = (t % blocks) * block;
        transpose(s + n * sn + p0, C, std::min(block, HW - p0), sc, d + (n * HW + p0) * C, C);
      }
    });
    return out;
  }
  parallel_for(0, N * H, 8, [&](int64_t lo, int64_t hi) {
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
inline Tensor from_nhwc(const Tensor& nhwc, DType dtype) {
  const int64_t N = nhwc.size(0), H = nhwc.size(1), W = nhwc.size(2), C = nhwc.size(3);
  Tensor out = Tensor::empty({N, C, H, W}, nhwc.dtype());
  const T* s = nhwc.data<T>();
  T* d = out.data<T>();
  // Tiles of 64 pixels x all channels (64 KB for C=256) stay in L2 while their
  // channels are written out as 64-pixel runs.
  const int64_t HW = H * W, tile = 64, tiles = (HW + tile - 1) / tile;
  if (sizeof(T) == 4) {
    const auto transpose = cpu_kernels().transpose_32;
    parallel_for(0, N * tiles, 4, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t n = t / tiles, p0 = (t % tiles) * tile;
        transpose(s + (n * HW + p0) * C, std::min(tile, HW - p0), C, C, d + n * C * HW + p0, HW);
      }
    });
    return out.to(dtype);
  }
  parallel_for(0, N * tiles, 4, [&](int64_t lo, int64_t hi) {
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

// A float32 result in `dtype`: bfloat16 through the tier's vector downcast (the
// same bits as Tensor::to), spread over the pool; other dtypes through Tensor::to.
inline Tensor result_as(const Tensor& out, DType dtype) {
  if (dtype != DType::BFloat16 || out.dtype() != DType::Float32) return out.to(dtype);
  Tensor r = Tensor::empty(out.sizes(), DType::BFloat16);
  const auto convert = cpu_kernels().float_to_bfloat16;
  const float* in = out.data<float>();
  uint16_t* o = r.data<uint16_t>();
  parallel_for(0, out.numel(), 1 << 16, [&](int64_t lo, int64_t hi) { convert(in + lo, hi - lo, o + lo); });
  return r;
}

// Raises for a CUDA tensor when this build has no CUDA kernels, else checks that
// the device matches a built SM target. The caller then dispatches to tvops::cuda.
inline void check_rois(const char* op, const Tensor& rois, DType dtype, Device device) {
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
inline Tensor checked_rois(const char* op, const Tensor& rois, int64_t batch) {
  Tensor r = rois.to(compute_dtype(rois.dtype())).contiguous();
  const T* p = r.data<T>();
  for (int64_t k = 0; k < r.size(0); ++k) {
    const T b = p[5 * k];  // used as int(b), truncating like torchvision
    TVOPS_CHECK(std::isfinite(b) && std::trunc(b) >= T(0) && std::trunc(b) < T(batch), Value, op, ": rois[", k,
                ", 0] = ", double(b), " is not a batch index of the input (", batch, " images)");
  }
  return r;
}

inline void check_pooling(const char* op, int64_t pooled_height, int64_t pooled_width) {
  TVOPS_CHECK(pooled_height > 0 && pooled_width > 0, Value, op, ": output size must be positive, got (",
              pooled_height, ", ", pooled_width, ")");
}

template <typename T>
inline cpu::RoiArgs<T> make_args(const Tensor& rois, int64_t C, int64_t H, int64_t W, int64_t ph, int64_t pw,
                               int64_t sampling_ratio, double spatial_scale, bool aligned) {
  return cpu::RoiArgs<T>{rois.data<T>(), nullptr, rois.size(0), C, H, W, ph, pw, sampling_ratio,
                              static_cast<T>(spatial_scale), aligned};
}

// RoIs image by image, top to bottom in bands of 16 feature pixels, then left to
// right: neighbouring RoIs share cached pixels. Non-finite coordinates sort as 0.
template <typename T>
std::vector<int64_t> spatial_order(const Tensor& rois, double spatial_scale) {
  const int64_t K = rois.size(0);
  const T* r = rois.data<T>();
  std::vector<std::pair<std::tuple<int64_t, int64_t, T>, int64_t>> keys(K);
  for (int64_t k = 0; k < K; ++k) {
    const T band = std::floor(r[5 * k + 2] * static_cast<T>(spatial_scale) / T(16)), x = r[5 * k + 1];
    keys[k] = {{static_cast<int64_t>(r[5 * k]),
                std::isfinite(band) && std::abs(band) < T(1e15) ? static_cast<int64_t>(band) : 0,
                std::isfinite(x) ? x : T(0)}, k};
  }
  std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<int64_t> order(K);
  for (int64_t k = 0; k < K; ++k) order[k] = keys[k].second;
  return order;
}

}  // namespace tvops::detail
