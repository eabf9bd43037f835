// CUDA roi_pool (max over rounded integer bins, with argmax) and ps_roi_pool
// (position-sensitive average), forward and backward, with torchvision's
// arithmetic and its border quirks (OPS.md §6, §8). Same launch shape as
// roi_align.cu: one block per (RoI, chunk of output channels), RoIs fastest, one
// thread per (channel, bin) output.
#include <cfloat>
#include <type_traits>

#include "kernels/cuda/ops.h"
#include "kernels/cuda/roi_common.cuh"

namespace tvops::cuda {

namespace {

using roi::acc_t;
using roi::Strides4;

constexpr int kThreads = kTune.roi_threads;

struct PoolShape {
  int K, batch, C, C_out, H, W, PH, PW, chunk;
};

// torchvision's integer RoI: batch index (-1 when invalid), start, and extent.
struct IntRoi {
  int b, start_h, start_w, height, width;
};

template <bool PS, typename T>
__device__ IntRoi int_roi(const T* r, acc_t<T> scale, int batch) {
  using A = acc_t<T>;
  IntRoi q;
  q.b = roi::batch_index(roi::load(r), batch);
  int c[4];
  for (int i = 0; i < 4; ++i) {
    const A v = roi::load(r + 1 + i) * scale;
    // roi_pool: round() in T; ps_roi_pool: roundf(), also for float64. The casts
    // saturate, and every bin is clamped to the map below, so no index leaves it.
    c[i] = PS ? static_cast<int>(roundf(static_cast<float>(v))) : static_cast<int>(round(v));
  }
  q.start_w = c[0];
  q.start_h = c[1];
  const int extra = PS ? 0 : 1;  // roi_pool counts the end pixel, ps_roi_pool does not
  q.width = max(c[2] - c[0] + extra, 1);
  q.height = max(c[3] - c[1] + extra, 1);
  return q;
}

// [start, end) of bin p of a `extent`-pixel RoI starting at `start`, clamped to [0, limit].
template <typename A>
__device__ inline void bin_range(int p, int pooled, int extent, int start, int limit, int& lo, int& hi) {
  const A bin = static_cast<A>(extent) / static_cast<A>(pooled);
  lo = static_cast<int>(floor(static_cast<A>(p) * bin));
  hi = static_cast<int>(ceil(static_cast<A>(p + 1) * bin));
  lo = min(max(lo + start, 0), limit);
  hi = min(max(hi + start, 0), limit);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    roi_pool_forward(const T* input, Strides4 s, const T* rois, acc_t<T> scale, PoolShape p, T* out, int32_t* argmax) {
  using A = acc_t<T>;
  const int k = blockIdx.x, c0 = blockIdx.y * p.chunk;
  const IntRoi q = int_roi<false>(rois + int64_t(k) * 5, scale, p.batch);
  const int bins = p.PH * p.PW, items = (min(p.C, c0 + p.chunk) - c0) * bins;
  for (int i = threadIdx.x; i < items; i += blockDim.x) {
    const int c = c0 + i / bins, bin = i % bins, ph = bin / p.PW, pw = bin % p.PW;
    int h0, h1, w0, w1;
    bin_range<A>(ph, p.PH, q.height, q.start_h, p.H, h0, h1);
    bin_range<A>(pw, p.PW, q.width, q.start_w, p.W, w0, w1);
    const bool empty = h1 <= h0 || w1 <= w0 || q.b < 0;
    // torchvision's sentinel is -FLT_MAX for every dtype; NaNs never win the strict '>'.
    A best = empty ? A(0) : A(-FLT_MAX);
    int where = -1;
    if (!empty) {
      const T* plane = input + q.b * s.n + c * s.c;
      for (int h = h0; h < h1; ++h)
        for (int w = w0; w < w1; ++w) {
          const A v = roi::load(plane + h * s.h + w * s.w);
          if (v > best) {
            best = v;
            where = h * p.W + w;
          }
        }
    }
    const int64_t o = (int64_t(k) * p.C + c) * bins + bin;
    out[o] = roi::store_cast<T>(best);
    argmax[o] = where;
  }
}

// roi_pool on a channels-last map (see roi_common.cuh): lane = channel, the warps share
// the bins, outputs and argmaxes staged in shared memory for [32 channels x bins] writes.
constexpr int kLanes = 32;
constexpr int kStageBytes = kTune.roi_stage_bytes;

template <typename T>
__global__ void __launch_bounds__(kThreads) roi_pool_forward_cl(const T* input, Strides4 s, const T* rois,
                                                                acc_t<T> scale, PoolShape p, T* out,
                                                                int32_t* argmax) {
  using A = acc_t<T>;
  extern __shared__ __align__(16) unsigned char stage_raw[];
  const int bins = p.PH * p.PW;
  A* stage = reinterpret_cast<A*>(stage_raw);
  int32_t* stage_at = reinterpret_cast<int32_t*>(stage + kLanes * bins);
  const int k = blockIdx.x, c0 = blockIdx.y * kLanes;
  const IntRoi q = int_roi<false>(rois + int64_t(k) * 5, scale, p.batch);
  const int lane = threadIdx.x % kLanes, warp = threadIdx.x / kLanes, warps = blockDim.x / kLanes;
  const int c = c0 + lane;
  const T* plane = q.b >= 0 && c < p.C ? input + q.b * s.n + c * s.c : nullptr;
  for (int bin = warp; bin < bins; bin += warps) {
    const int ph = bin / p.PW, pw = bin % p.PW;
    int h0, h1, w0, w1;
    bin_range<A>(ph, p.PH, q.height, q.start_h, p.H, h0, h1);
    bin_range<A>(pw, p.PW, q.width, q.start_w, p.W, w0, w1);
    const bool empty = h1 <= h0 || w1 <= w0 || !plane;
    A best = empty ? A(0) : A(-FLT_MAX);
    int where = -1;
    if (!empty)
      for (int h = h0; h < h1; ++h)
        for (int w = w0; w < w1; ++w) {
          const A v = roi::load(plane + h * s.h + w * s.w);
          if (v > best) {
            best = v;
            where = h * p.W + w;
          }
        }
    stage[lane * bins + bin] = best;
    stage_at[lane * bins + bin] = where;
  }
  __syncthreads();
  const int n = min(kLanes, p.C - c0) * bins;
  const int64_t o = (int64_t(k) * p.C + c0) * bins;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    out[o + i] = roi::store_cast<T>(stage[i]);
    argmax[o + i] = stage_at[i];
  }
}

template <typename T, bool D>
__global__ void __launch_bounds__(kThreads) roi_pool_backward(const T* grad, Strides4 gs, const int32_t* argmax,
                                                              const T* rois, PoolShape p,
                                                              roi::Scatter<acc_t<T>, D> sc) {
  using A = acc_t<T>;
  const int k = blockIdx.x, c0 = blockIdx.y * p.chunk;
  const int b = roi::batch_index(roi::load(rois + int64_t(k) * 5), p.batch);
  if (b < 0) return;
  const A unit = D ? sc.unit() : A(1);
  const int bins = p.PH * p.PW, items = (min(p.C, c0 + p.chunk) - c0) * bins;
  const int plane_size = p.H * p.W;
  for (int i = threadIdx.x; i < items; i += blockDim.x) {
    const int c = c0 + i / bins, bin = i % bins, ph = bin / p.PW, pw = bin % p.PW;
    const int where = argmax[(int64_t(k) * p.C + c) * bins + bin];
    // The argmax comes from the caller: indices outside the plane are ignored, not written.
    if (where < 0 || where >= plane_size) continue;
    const A g = roi::load(grad + k * gs.n + c * gs.c + ph * gs.h + pw * gs.w);
    sc.add((int64_t(b) * p.C + c) * plane_size + where, g, unit);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) ps_roi_pool_forward(const T* input, Strides4 s, const T* rois,
                                                                acc_t<T> scale, PoolShape p, T* out,
                                                                int32_t* mapping) {
  using A = acc_t<T>;
  const int k = blockIdx.x, c0 = blockIdx.y * p.chunk;
  const IntRoi q = int_roi<true>(rois + int64_t(k) * 5, scale, p.batch);
  const int bins = p.PH * p.PW, items = (min(p.C_out, c0 + p.chunk) - c0) * bins;
  for (int i = threadIdx.x; i < items; i += blockDim.x) {
    const int co = c0 + i / bins, bin = i % bins, ph = bin / p.PW, pw = bin % p.PW;
    const int c_in = (co * p.PH + ph) * p.PW + pw;
    int h0, h1, w0, w1;  // forward clamps to H-1 / W-1: torchvision never pools the last row/column
    bin_range<A>(ph, p.PH, q.height, q.start_h, p.H - 1, h0, h1);
    bin_range<A>(pw, p.PW, q.width, q.start_w, p.W - 1, w0, w1);
    const bool empty = h1 <= h0 || w1 <= w0 || q.b < 0;
    A sum = 0;
    if (!empty) {
      const T* plane = input + q.b * s.n + c_in * s.c;
      for (int h = h0; h < h1; ++h)
        for (int w = w0; w < w1; ++w) sum += roi::load(plane + h * s.h + w * s.w);
    }
    const A area = static_cast<A>((h1 - h0) * (w1 - w0));
    const int64_t o = (int64_t(k) * p.C_out + co) * bins + bin;
    out[o] = roi::store_cast<T>(empty ? A(0) : sum / area);
    mapping[o] = c_in;
  }
}

template <typename T, bool D>
__global__ void __launch_bounds__(kThreads) ps_roi_pool_backward(const T* grad, Strides4 gs, const T* rois,
                                                                 acc_t<T> scale, PoolShape p,
                                                                 roi::Scatter<acc_t<T>, D> sc) {
  using A = acc_t<T>;
  const int k = blockIdx.x, c0 = blockIdx.y * p.chunk;
  const IntRoi q = int_roi<true>(rois + int64_t(k) * 5, scale, p.batch);
  if (q.b < 0) return;
  const A unit = D ? sc.unit() : A(1);
  const int bins = p.PH * p.PW, items = (min(p.C_out, c0 + p.chunk) - c0) * bins;
  for (int i = threadIdx.x; i < items; i += blockDim.x) {
    const int co = c0 + i / bins, bin = i % bins, ph = bin / p.PW, pw = bin % p.PW;
    const int c_in = (co * p.PH + ph) * p.PW + pw;
    int h0, h1, w0, w1;  // backward clamps to H / W (torchvision's forward/backward mismatch)
    bin_range<A>(ph, p.PH, q.height, q.start_h, p.H, h0, h1);
    bin_range<A>(pw, p.PW, q.width, q.start_w, p.W, w0, w1);
    if (h1 <= h0 || w1 <= w0) continue;
    const A area = static_cast<A>((h1 - h0) * (w1 - w0));
    const A g = roi::load(grad + k * gs.n + co * gs.c + ph * gs.h + pw * gs.w) / area;
    const int64_t plane = (int64_t(q.b) * p.C + c_in) * p.H * p.W;
    for (int h = h0; h < h1; ++h)
      for (int w = w0; w < w1; ++w) sc.add(plane + h * p.W + w, g, unit);
  }
}

PoolShape pool_shape(const char* op, int64_t K, int64_t N, int64_t C, int64_t C_out, int64_t H, int64_t W,
                     int64_t PH, int64_t PW) {
  roi::check_sizes(op, K, N, C, PH, PW);
  roi::check_int_range(op, H * W, "height * width");
  return PoolShape{int(K), int(N), int(C), int(C_out), int(H), int(W), int(PH), int(PW),
                   roi::chunk_for(C_out, PH * PW)};
}

dim3 grid_of(const PoolShape& p) { return dim3(p.K, (p.C_out + p.chunk - 1) / p.chunk); }

// Shared backward driver: zeroed buffers, the scatter kernel, the cast to grad's dtype.
template <typename Launch>
Tensor pool_backward(const Tensor& grad, int64_t K, int64_t N, int64_t C, int64_t H, int64_t W, int64_t PH,
                     int64_t PW, bool deterministic, const Context& ctx, Launch&& launch) {
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  Tensor out = Tensor::empty({N, C, H, W}, grad.dtype(), grad.device(), ctx);
  if (out.numel() == 0) return out;
  roi::dispatch(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    roi::GradBuffers<A> buf(out.numel(), deterministic, K * PH * PW, std::is_same_v<T, A> ? out.data_ptr() : nullptr,
                            grad.device().index, stream);
    if (grad.numel() > 0) {
      buf.measure(grad.data<T>(), roi::strides_of(grad), grad.size(1), PH, PW, grad.numel(), stream);
      if (deterministic)
        launch(tag, buf.template scatter<true>());
      else
        launch(tag, buf.template scatter<false>());
      TVOPS_CUDA_CHECK(cudaGetLastError());
    }
    buf.finish(out.data<T>(), 0, out.numel(), stream);
  });
  return out;
}

}  // namespace

std::pair<Tensor, Tensor> roi_pool(const Tensor& input, const Tensor& rois_in, double spatial_scale,
                                   int64_t pooled_height, int64_t pooled_width, const Context& ctx) {
  DeviceGuard guard(input.device().index);
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  const int64_t K = rois_in.size(0), N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  Tensor out = Tensor::empty({K, C, pooled_height, pooled_width}, input.dtype(), input.device(), ctx);
  Tensor argmax = Tensor::empty({K, C, pooled_height, pooled_width}, DType::Int32, input.device(), ctx);
  if (out.numel() == 0) return {out, argmax};
  const PoolShape p = pool_shape("roi_pool", K, N, C, C, H, W, pooled_height, pooled_width);
  const Tensor rois = rois_in.contiguous(ctx);
  roi::dispatch(input.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    const std::size_t stage = std::size_t(kLanes) * pooled_height * pooled_width * (sizeof(A) + sizeof(int32_t));
    if (stage <= std::size_t(kStageBytes) && (C + kLanes - 1) / kLanes <= 65535) {
      Tensor copy;
      Strides4 s;
      const T* x = roi::channels_last_view<T>(input, copy, s, ctx);
      roi_pool_forward_cl<T><<<dim3(p.K, unsigned((C + kLanes - 1) / kLanes)), kThreads, stage, stream>>>(
          x, s, rois.data<T>(), static_cast<A>(spatial_scale), p, out.data<T>(), argmax.data<int32_t>());
    } else {
      roi_pool_forward<T><<<grid_of(p), kThreads, 0, stream>>>(input.data<T>(), roi::strides_of(input),
                                                               rois.data<T>(), static_cast<A>(spatial_scale), p,
                                                               out.data<T>(), argmax.data<int32_t>());
    }
  });
  TVOPS_CUDA_CHECK(cudaGetLastError());
  return {out, argmax};
}

Tensor roi_pool_backward(const Tensor& grad, const Tensor& rois_in, const Tensor& argmax_in, int64_t pooled_height,
                         int64_t pooled_width, int64_t batch, int64_t channels, int64_t height, int64_t width,
                         bool deterministic, const Context& ctx) {
  DeviceGuard guard(grad.device().index);
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  const int64_t K = rois_in.size(0);
  const PoolShape p = pool_shape("roi_pool_backward", K, batch, channels, channels, height, width, pooled_height,
                                 pooled_width);
  const Tensor rois = rois_in.contiguous(ctx), argmax = argmax_in.contiguous(ctx);
  return pool_backward(grad, K, batch, channels, height, width, pooled_height, pooled_width, deterministic, ctx,
                       [&](auto tag, auto scatter) {
                         using T = decltype(tag);
                         constexpr bool D = decltype(scatter)::deterministic;
                         roi_pool_backward<T, D><<<grid_of(p), kThreads, 0, stream>>>(
                             grad.data<T>(), roi::strides_of(grad), argmax.data<int32_t>(), rois.data<T>(), p,
                             scatter);
                       });
}

std::pair<Tensor, Tensor> ps_roi_pool(const Tensor& input, const Tensor& rois_in, double spatial_scale,
                                      int64_t pooled_height, int64_t pooled_width, const Context& ctx) {
  DeviceGuard guard(input.device().index);
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  const int64_t K = rois_in.size(0), N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t C_out = C / (pooled_height * pooled_width);
  Tensor out = Tensor::empty({K, C_out, pooled_height, pooled_width}, input.dtype(), input.device(), ctx);
  Tensor mapping = Tensor::empty({K, C_out, pooled_height, pooled_width}, DType::Int32, input.device(), ctx);
  if (out.numel() == 0) return {out, mapping};
  const PoolShape p = pool_shape("ps_roi_pool", K, N, C, C_out, H, W, pooled_height, pooled_width);
  const Tensor rois = rois_in.contiguous(ctx);
  roi::dispatch(input.dtype(), [&](auto tag) {
    using T = decltype(tag);
    ps_roi_pool_forward<T><<<grid_of(p), kThreads, 0, stream>>>(
        input.data<T>(), roi::strides_of(input), rois.data<T>(), static_cast<acc_t<T>>(spatial_scale), p,
        out.data<T>(), mapping.data<int32_t>());
  });
  TVOPS_CUDA_CHECK(cudaGetLastError());
  return {out, mapping};
}

Tensor ps_roi_pool_backward(const Tensor& grad, const Tensor& rois_in, double spatial_scale, int64_t pooled_height,
                            int64_t pooled_width, int64_t batch, int64_t channels, int64_t height, int64_t width,
                            bool deterministic, const Context& ctx) {
  DeviceGuard guard(grad.device().index);
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  const int64_t K = rois_in.size(0), C_out = channels / (pooled_height * pooled_width);
  const PoolShape p = pool_shape("ps_roi_pool_backward", K, batch, channels, C_out, height, width, pooled_height,
                                 pooled_width);
  const Tensor rois = rois_in.contiguous(ctx);
  return pool_backward(grad, K, batch, channels, height, width, pooled_height, pooled_width, deterministic, ctx,
                       [&](auto tag, auto scatter) {
                         using T = decltype(tag);
                         constexpr bool D = decltype(scatter)::deterministic;
                         ps_roi_pool_backward<T, D><<<grid_of(p), kThreads, 0, stream>>>(
                             grad.data<T>(), roi::strides_of(grad), rois.data<T>(),
                             static_cast<acc_t<T>>(spatial_scale), p, scatter);
                       });
}

}  // namespace tvops::cuda
