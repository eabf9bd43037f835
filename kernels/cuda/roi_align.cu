// CUDA roi_align, ps_roi_align and multi_scale_roi_align, forward and backward, with
// torchvision's arithmetic (OPS.md §5, §7, §9).
//
// One block per (RoI, chunk of output channels); blockIdx.x runs over the RoIs, so
// the blocks in flight share a chunk of channels and its planes stay in L2 (the
// whole map does not fit). The block first samples the RoI's y and x axes once into
// shared memory (the sampler is separable, see roi_common.cuh), then each thread
// produces one (channel, bin) output: consecutive threads write consecutive outputs
// and read neighbouring pixels of one plane. The backward scatters the same samples
// with atomics (or order-independent fixed-point atomics in deterministic mode).
#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/cuda/ops.h"
#include "kernels/cuda/roi_common.cuh"

namespace tvops::cuda {

namespace {

using roi::acc_t;
using roi::AxisSample;
using roi::check_int_range;
using roi::check_sizes;
using roi::chunk_for;
using roi::dispatch;
using roi::Strides4;

constexpr int kThreads = kTune.roi_threads;
constexpr int kMaxLevels = 8;
constexpr int kTableCap = 64;  // axis samples cached per RoI and axis; more are computed on use

// The arguments of one launch. Levels: multi_scale_roi_align pools RoI k from map
// level_of[k]; roi_align and ps_roi_align have one level.
template <typename T, typename A>
struct AlignArgs {
  const T* rois;  // contiguous [K, 5]
  const int64_t* level_of;  // null: all level 0
  int K, batch, C, C_out, PH, PW, sampling_ratio, chunk, levels;
  bool aligned;
  const T* maps[kMaxLevels];       // forward inputs
  Strides4 strides[kMaxLevels];    // forward: map strides; backward: contiguous strides of the level's grad
  int64_t base[kMaxLevels];        // backward: offset of the level in the grad buffers
  int H[kMaxLevels], W[kMaxLevels];
  A scale[kMaxLevels];
};

// Per-block RoI geometry, torchvision's formulas in A.
template <typename A>
struct Geometry {
  int b, level, gh, gw, H, W;
  A start_h, start_w, bin_h, bin_w;
  bool y_cached, x_cached;

  __device__ A y(int ph, int iy) const {
    return start_h + ph * bin_h + static_cast<A>(iy + .5f) * bin_h / static_cast<A>(gh);
  }
  __device__ A x(int pw, int ix) const {
    return start_w + pw * bin_w + static_cast<A>(ix + .5f) * bin_w / static_cast<A>(gw);
  }
};

// ps_roi_align is roi_align with aligned=true (half-pixel offset, no minimum size).
template <typename T, typename A, bool PS>
__device__ Geometry<A> roi_geometry(const AlignArgs<T, A>& a, int k) {
  Geometry<A> g;
  const T* r = a.rois + int64_t(k) * 5;
  g.level = a.level_of ? static_cast<int>(a.level_of[k]) : 0;
  const bool level_ok = g.level >= 0 && g.level < a.levels;
  g.b = level_ok ? roi::batch_index(roi::load(r), a.batch) : -1;
  const int l = level_ok ? g.level : 0;
  g.H = a.H[l];
  g.W = a.W[l];
  const A s = a.scale[l];
  const bool aligned = PS || a.aligned;
  const A off = aligned ? A(0.5) : A(0);
  g.start_w = roi::load(r + 1) * s - off;
  g.start_h = roi::load(r + 2) * s - off;
  const A end_w = roi::load(r + 3) * s - off, end_h = roi::load(r + 4) * s - off;
  A rw = end_w - g.start_w, rh = end_h - g.start_h;
  if (!aligned) {  // legacy: malformed RoIs forced to 1x1
    rw = rw > A(1) ? rw : A(1);
    rh = rh > A(1) ? rh : A(1);
  }
  g.bin_h = rh / static_cast<A>(a.PH);
  g.bin_w = rw / static_cast<A>(a.PW);
  g.gh = roi::grid_size(a.sampling_ratio, rh, a.PH);
  g.gw = roi::grid_size(a.sampling_ratio, rw, a.PW);
  g.y_cached = int64_t(a.PH) * g.gh <= kTableCap;
  g.x_cached = int64_t(a.PW) * g.gw <= kTableCap;
  return g;
}

template <typename A>
__device__ void fill_tables(const Geometry<A>& g, int PH, int PW, AxisSample<A>* ys, AxisSample<A>* xs) {
  if (g.y_cached)
    for (int i = threadIdx.x; i < PH * g.gh; i += blockDim.x) ys[i] = roi::axis_sample(g.y(i / g.gh, i % g.gh), g.H);
  if (g.x_cached)
    for (int i = threadIdx.x; i < PW * g.gw; i += blockDim.x) xs[i] = roi::axis_sample(g.x(i / g.gw, i % g.gw), g.W);
}

template <typename A>
__device__ inline AxisSample<A> y_sample(const Geometry<A>& g, const AxisSample<A>* ys, int ph, int iy) {
  return g.y_cached ? ys[ph * g.gh + iy] : roi::axis_sample(g.y(ph, iy), g.H);
}
template <typename A>
__device__ inline AxisSample<A> x_sample(const Geometry<A>& g, const AxisSample<A>* xs, int pw, int ix) {
  return g.x_cached ? xs[pw * g.gw + ix] : roi::axis_sample(g.x(pw, ix), g.W);
}

template <typename T, typename A, bool PS>
__global__ void __launch_bounds__(kThreads) align_forward(AlignArgs<T, A> a, T* out, int32_t* mapping) {
  __shared__ AxisSample<A> ys[kTableCap], xs[kTableCap];
  const int k = blockIdx.x, c0 = blockIdx.y * a.chunk;
  const Geometry<A> g = roi_geometry<T, A, PS>(a, k);
  fill_tables(g, a.PH, a.PW, ys, xs);
  __syncthreads();
  const int bins = a.PH * a.PW, c1 = min(a.C_out, c0 + a.chunk);
  const int items = (c1 - c0) * bins;
  // roi_align divides by max(count, 1); ps_roi_align by count (0/0 = NaN, as torchvision).
  const int count = PS ? g.gh * g.gw : max(g.gh * g.gw, 1);
  const Strides4 s = a.strides[g.b >= 0 ? g.level : 0];
  for (int i = threadIdx.x; i < items; i += blockDim.x) {
    const int co = c0 + i / bins, bin = i % bins, ph = bin / a.PW, pw = bin % a.PW;
    const int c_in = PS ? (co * a.PH + ph) * a.PW + pw : co;
    A acc = 0;
    if (g.b >= 0) {
      const T* plane = a.maps[g.level] + g.b * s.n + c_in * s.c;
      for (int iy = 0; iy < g.gh; ++iy) {
        const AxisSample<A> Y = y_sample(g, ys, ph, iy);
        if (Y.lo < 0) continue;
        const T* r0 = plane + Y.lo * s.h;
        const T* r1 = plane + Y.hi * s.h;
        for (int ix = 0; ix < g.gw; ++ix) {
          const AxisSample<A> X = x_sample(g, xs, pw, ix);
          if (X.lo < 0) continue;
          const A v1 = roi::load(r0 + X.lo * s.w), v2 = roi::load(r0 + X.hi * s.w);
          const A v3 = roi::load(r1 + X.lo * s.w), v4 = roi::load(r1 + X.hi * s.w);
          const A w1 = Y.h * X.h, w2 = Y.h * X.l, w3 = Y.l * X.h, w4 = Y.l * X.l;
          acc += w1 * v1 + w2 * v2 + w3 * v3 + w4 * v4;
        }
      }
      acc /= static_cast<A>(count);
    }
    const int64_t o = (int64_t(k) * a.C_out + co) * bins + bin;
    out[o] = roi::store_cast<T>(acc);
    if (PS) mapping[o] = c_in;
  }
}

template <typename T, typename A, bool PS, bool D>
__global__ void __launch_bounds__(kThreads)
    align_backward(AlignArgs<T, A> a, const T* grad, Strides4 gs, roi::Scatter<A, D> sc) {
  __shared__ AxisSample<A> ys[kTableCap], xs[kTableCap];
  const int k = blockIdx.x, c0 = blockIdx.y * a.chunk;
  const Geometry<A> g = roi_geometry<T, A, PS>(a, k);
  if (g.b < 0) return;  // uniform over the block
  fill_tables(g, a.PH, a.PW, ys, xs);
  __syncthreads();
  const A unit = D ? sc.unit() : A(1);
  const int bins = a.PH * a.PW, c1 = min(a.C_out, c0 + a.chunk);
  const int items = (c1 - c0) * bins;
  const A count = static_cast<A>(g.gh * g.gw);
  const Strides4 s = a.strides[g.level];
  for (int i = threadIdx.x; i < items; i += blockDim.x) {
    const int co = c0 + i / bins, bin = i % bins, ph = bin / a.PW, pw = bin % a.PW;
    const int c_in = PS ? (co * a.PH + ph) * a.PW + pw : co;
    const A gv = roi::load(grad + k * gs.n + co * gs.c + ph * gs.h + pw * gs.w);
    const int64_t plane = a.base[g.level] + g.b * s.n + c_in * s.c;
    for (int iy = 0; iy < g.gh; ++iy) {
      const AxisSample<A> Y = y_sample(g, ys, ph, iy);
      if (Y.lo < 0) continue;
      for (int ix = 0; ix < g.gw; ++ix) {
        const AxisSample<A> X = x_sample(g, xs, pw, ix);
        if (X.lo < 0) continue;
        const A w1 = Y.h * X.h, w2 = Y.h * X.l, w3 = Y.l * X.h, w4 = Y.l * X.l;
        sc.add(plane + Y.lo * s.h + X.lo * s.w, gv * w1 / count, unit);
        sc.add(plane + Y.lo * s.h + X.hi * s.w, gv * w2 / count, unit);
        sc.add(plane + Y.hi * s.h + X.lo * s.w, gv * w3 / count, unit);
        sc.add(plane + Y.hi * s.h + X.hi * s.w, gv * w4 / count, unit);
      }
    }
  }
}

// roi_align on channels-last maps: a block is one RoI and 32 channels, lane = channel,
// the 8 warps share the bins. Every read and atomic of a warp touches one pixel's 32
// neighbouring channels (one cache line). Outputs (and, backward, the incoming grads)
// go through shared memory so that global memory sees [32 channels x bins] runs.
constexpr int kLanes = 32;
constexpr int kStageBytes = kTune.roi_stage_bytes;

// G > 0: the sampling grid is G x G for every RoI (sampling_ratio = G), known at compile
// time so the sample loops unroll and all their loads are in flight together.
template <typename T, typename A, int G>
__global__ void __launch_bounds__(kThreads) align_forward_cl(AlignArgs<T, A> a, T* out) {
  __shared__ AxisSample<A> ys[kTableCap], xs[kTableCap];
  extern __shared__ __align__(16) unsigned char stage_raw[];
  A* stage = reinterpret_cast<A*>(stage_raw);
  const int k = blockIdx.x, c0 = blockIdx.y * kLanes;
  const Geometry<A> g = roi_geometry<T, A, false>(a, k);
  fill_tables(g, a.PH, a.PW, ys, xs);
  __syncthreads();
  const int lane = threadIdx.x % kLanes, warp = threadIdx.x / kLanes, warps = blockDim.x / kLanes;
  const int c = c0 + lane, bins = a.PH * a.PW;
  const bool active = c < a.C && g.b >= 0;
  const A count = static_cast<A>(max(g.gh * g.gw, 1));
  const Strides4 s = a.strides[g.b >= 0 ? g.level : 0];
  const T* plane = active ? a.maps[g.level] + g.b * s.n + c * s.c : nullptr;
  const int gh = G > 0 ? G : g.gh, gw = G > 0 ? G : g.gw;
  for (int bin = warp; bin < bins; bin += warps) {
    const int ph = bin / a.PW, pw = bin % a.PW;
    A acc = 0;
    if (active) {
#pragma unroll
      for (int iy = 0; iy < gh; ++iy) {
        const AxisSample<A> Y = y_sample(g, ys, ph, iy);
        if (Y.lo < 0) continue;
        const T* r0 = plane + Y.lo * s.h;
        const T* r1 = plane + Y.hi * s.h;
#pragma unroll
        for (int ix = 0; ix < gw; ++ix) {
          const AxisSample<A> X = x_sample(g, xs, pw, ix);
          if (X.lo < 0) continue;
          const A v1 = roi::load(r0 + X.lo * s.w), v2 = roi::load(r0 + X.hi * s.w);
          const A v3 = roi::load(r1 + X.lo * s.w), v4 = roi::load(r1 + X.hi * s.w);
          const A w1 = Y.h * X.h, w2 = Y.h * X.l, w3 = Y.l * X.h, w4 = Y.l * X.l;
          acc += w1 * v1 + w2 * v2 + w3 * v3 + w4 * v4;
        }
      }
      acc /= count;
    }
    stage[lane * bins + bin] = acc;
  }
  __syncthreads();
  const int n = min(kLanes, a.C - c0) * bins;
  T* dst = out + (int64_t(k) * a.C + c0) * bins;
  for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = roi::store_cast<T>(stage[i]);
}

template <typename T, typename A, bool D, int G>
__global__ void __launch_bounds__(kThreads)
    align_backward_cl(AlignArgs<T, A> a, const T* grad, Strides4 gs, roi::Scatter<A, D> sc) {
  __shared__ AxisSample<A> ys[kTableCap], xs[kTableCap];
  extern __shared__ __align__(16) unsigned char stage_raw[];
  A* stage = reinterpret_cast<A*>(stage_raw);
  const int k = blockIdx.x, c0 = blockIdx.y * kLanes;
  const Geometry<A> g = roi_geometry<T, A, false>(a, k);
  if (g.b < 0) return;  // uniform over the block
  fill_tables(g, a.PH, a.PW, ys, xs);
  const int bins = a.PH * a.PW, nc = min(kLanes, a.C - c0);
  for (int i = threadIdx.x; i < nc * bins; i += blockDim.x) {
    const int c = c0 + i / bins, bin = i % bins;
    stage[i] = roi::load(grad + k * gs.n + c * gs.c + (bin / a.PW) * gs.h + (bin % a.PW) * gs.w);
  }
  __syncthreads();
  const A unit = D ? sc.unit() : A(1);
  const int lane = threadIdx.x % kLanes, warp = threadIdx.x / kLanes, warps = blockDim.x / kLanes;
  if (lane >= nc) return;  // no barrier below
  const int c = c0 + lane;
  const A count = static_cast<A>(g.gh * g.gw);
  const Strides4 s = a.strides[g.level];
  const int64_t plane = a.base[g.level] + g.b * s.n + c * s.c;
  const int gh = G > 0 ? G : g.gh, gw = G > 0 ? G : g.gw;
  for (int bin = warp; bin < bins; bin += warps) {
    const int ph = bin / a.PW, pw = bin % a.PW;
    const A gv = stage[lane * bins + bin];
#pragma unroll
    for (int iy = 0; iy < gh; ++iy) {
      const AxisSample<A> Y = y_sample(g, ys, ph, iy);
      if (Y.lo < 0) continue;
#pragma unroll
      for (int ix = 0; ix < gw; ++ix) {
        const AxisSample<A> X = x_sample(g, xs, pw, ix);
        if (X.lo < 0) continue;
        const A w1 = Y.h * X.h, w2 = Y.h * X.l, w3 = Y.l * X.h, w4 = Y.l * X.l;
        sc.add(plane + Y.lo * s.h + X.lo * s.w, gv * w1 / count, unit);
        sc.add(plane + Y.lo * s.h + X.hi * s.w, gv * w2 / count, unit);
        sc.add(plane + Y.hi * s.h + X.lo * s.w, gv * w3 / count, unit);
        sc.add(plane + Y.hi * s.h + X.hi * s.w, gv * w4 / count, unit);
      }
    }
  }
}

// ---- Host side ----

template <typename T, typename A>
AlignArgs<T, A> make_args(const Tensor& rois, const int64_t* level_of, int64_t batch, int64_t C, int64_t C_out,
                          int64_t PH, int64_t PW, int64_t sr, bool aligned) {
  AlignArgs<T, A> a{};
  a.rois = rois.data<T>();
  a.level_of = level_of;
  a.K = static_cast<int>(rois.size(0));
  a.batch = static_cast<int>(batch);
  a.C = static_cast<int>(C);
  a.C_out = static_cast<int>(C_out);
  a.PH = static_cast<int>(PH);
  a.PW = static_cast<int>(PW);
  a.sampling_ratio = static_cast<int>(std::max<int64_t>(std::min<int64_t>(sr, 1 << 20), -1));
  a.chunk = chunk_for(C_out, PH * PW);
  a.aligned = aligned;
  return a;
}

// The RoI kernels reread neighbouring pixels (samples share corners, neighbouring
// bins share rows): ask for no more shared memory than 8 resident blocks need, so the
// rest of the SM's unified L1/shared storage caches those reads.
template <typename Kernel>
void prefer_l1(Kernel kernel, std::size_t dynamic_smem) {
  cudaFuncAttributes attr;
  if (cudaFuncGetAttributes(&attr, kernel) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  const double per_sm = 228.0 * 1024;
  const int percent = static_cast<int>(std::min(100.0, 8.0 * (attr.sharedSizeBytes + dynamic_smem + 1024) / per_sm * 100 + 1));
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, percent) != cudaSuccess)
    cudaGetLastError();  // only a hint
}

// roi_align uses the channels-last kernels when a block's [32 x bins] outputs fit the
// staging buffer; ps_roi_align reads a different channel per bin, so it stays NCHW.
template <typename A, bool PS>
bool use_channels_last(int64_t PH, int64_t PW) {
  return !PS && kLanes * PH * PW * int64_t(sizeof(A)) <= kStageBytes;
}

template <typename T, bool PS>
void run_forward(AlignArgs<T, acc_t<T>> a, T* out, int32_t* mapping, cudaStream_t stream) {
  const dim3 grid(a.K, (a.C_out + a.chunk - 1) / a.chunk);
  align_forward<T, acc_t<T>, PS><<<grid, kThreads, 0, stream>>>(a, out, mapping);
  TVOPS_CUDA_CHECK(cudaGetLastError());
}

// Forward over `maps` (one level, or several with level_of).
template <bool PS>
void forward(const char* op, const std::vector<Tensor>& maps, const std::vector<double>& scales, const Tensor& rois_in,
             const int64_t* level_of, int64_t C_out, int64_t PH, int64_t PW, int64_t sr, bool aligned, Tensor& out,
             int32_t* mapping, const Context& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  const Tensor rois = rois_in.contiguous(ctx);
  const int64_t N = maps[0].size(0), C = maps[0].size(1);
  check_sizes(op, rois.size(0), N, C, PH, PW);
  dispatch(maps[0].dtype(), [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    auto a = make_args<T, A>(rois, level_of, N, C, C_out, PH, PW, sr, aligned);
    a.levels = static_cast<int>(maps.size());
    const bool cl = use_channels_last<A, PS>(PH, PW) && (C + kLanes - 1) / kLanes <= 65535;
    std::vector<Tensor> copies(maps.size());  // channels-last copies, alive until the kernel is queued
    for (std::size_t l = 0; l < maps.size(); ++l) {
      check_int_range(op, maps[l].size(2), "height");
      check_int_range(op, maps[l].size(3), "width");
      if (cl) {
        a.maps[l] = roi::channels_last_view<T>(maps[l], copies[l], a.strides[l], ctx);
      } else {
        a.maps[l] = maps[l].data<T>();
        a.strides[l] = roi::strides_of(maps[l]);
      }
      a.H[l] = static_cast<int>(maps[l].size(2));
      a.W[l] = static_cast<int>(maps[l].size(3));
      a.scale[l] = static_cast<A>(scales[l]);  // in A, as the CPU path does for half types
    }
    if constexpr (!PS) {
      if (cl) {
        const dim3 grid(a.K, unsigned((C + kLanes - 1) / kLanes));
        const std::size_t smem = kLanes * PH * PW * sizeof(A);
        auto launch = [&](auto kernel) {
          prefer_l1(kernel, smem);
          kernel<<<grid, kThreads, smem, stream>>>(a, out.data<T>());
        };
        if (a.sampling_ratio == 2)
          launch(align_forward_cl<T, A, 2>);
        else if (a.sampling_ratio == 1)
          launch(align_forward_cl<T, A, 1>);
        else
          launch(align_forward_cl<T, A, 0>);
        TVOPS_CUDA_CHECK(cudaGetLastError());
        return;
      }
    }
    run_forward<T, PS>(a, out.data<T>(), mapping, stream);
  });
}

// Backward into level grads of `shapes` (contiguous NCHW, dtype of grad).
template <bool PS>
std::vector<Tensor> backward(const char* op, const Tensor& grad, const std::vector<double>& scales,
                             const Tensor& rois_in, const int64_t* level_of,
                             const std::vector<std::vector<int64_t>>& shapes, int64_t PH, int64_t PW, int64_t sr,
                             bool aligned, bool deterministic, const Context& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  const Device device = grad.device();
  const Tensor rois = rois_in.contiguous(ctx);
  const int64_t K = rois.size(0), N = shapes[0][0], C = shapes[0][1], C_out = grad.size(1);
  check_sizes(op, K, N, C, PH, PW);
  std::vector<int64_t> base;
  int64_t total = 0;
  for (const auto& s : shapes) {
    base.push_back(total);
    total += s[0] * s[1] * s[2] * s[3];
  }
  // One output allocation for all levels; each level's tensor views its slice.
  Tensor all = Tensor::empty({total}, grad.dtype(), device, ctx);
  std::vector<Tensor> result;
  for (std::size_t l = 0; l < shapes.size(); ++l)
    result.push_back(Tensor::from_blob(static_cast<char*>(all.data_ptr()) + base[l] * dtype_size(grad.dtype()),
                                       shapes[l], {}, grad.dtype(), device, all.owner()));
  if (total == 0) return result;
  dispatch(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    constexpr bool same = std::is_same_v<T, A>;
    const bool cl = use_channels_last<A, PS>(PH, PW) && (C + kLanes - 1) / kLanes <= 65535;
    // Channels-last sums need a layout change at the end, so they never alias the result.
    roi::GradBuffers<A> buf(total, deterministic, K * PH * PW, same && !cl ? all.data_ptr() : nullptr,
                            device.index, stream);
    if (grad.numel() > 0) {
      auto a = make_args<T, A>(rois, level_of, N, C, C_out, PH, PW, sr, aligned);
      a.levels = static_cast<int>(shapes.size());
      for (std::size_t l = 0; l < shapes.size(); ++l) {
        const auto& s = shapes[l];
        check_int_range(op, s[2], "height");
        check_int_range(op, s[3], "width");
        a.H[l] = static_cast<int>(s[2]);
        a.W[l] = static_cast<int>(s[3]);
        a.strides[l] = cl ? roi::channels_last_strides(s[1], s[2], s[3])
                          : Strides4{s[1] * s[2] * s[3], s[2] * s[3], s[3], 1};
        a.base[l] = base[l];
        a.scale[l] = static_cast<A>(scales[l]);
      }
      const Strides4 gs = roi::strides_of(grad);
      buf.measure(grad.data<T>(), gs, C_out, PH, PW, grad.numel(), stream);
      if (cl) {
        if constexpr (!PS) {
          const dim3 grid(a.K, unsigned((C + kLanes - 1) / kLanes));
          const std::size_t smem = kLanes * PH * PW * sizeof(A);
          auto launch = [&](auto kernel, auto scatter) {
            prefer_l1(kernel, smem);
            kernel<<<grid, kThreads, smem, stream>>>(a, grad.data<T>(), gs, scatter);
          };
          auto run = [&](auto d) {
            constexpr bool D = decltype(d)::value;
            auto sc = buf.template scatter<D>();
            if (a.sampling_ratio == 2)
              launch(align_backward_cl<T, A, D, 2>, sc);
            else if (a.sampling_ratio == 1)
              launch(align_backward_cl<T, A, D, 1>, sc);
            else
              launch(align_backward_cl<T, A, D, 0>, sc);
          };
          if (deterministic)
            run(std::true_type{});
          else
            run(std::false_type{});
        }
      } else {
        const dim3 grid(a.K, (a.C_out + a.chunk - 1) / a.chunk);
        if (deterministic)
          align_backward<T, A, PS, true><<<grid, kThreads, 0, stream>>>(a, grad.data<T>(), gs,
                                                                        buf.template scatter<true>());
        else
          align_backward<T, A, PS, false><<<grid, kThreads, 0, stream>>>(a, grad.data<T>(), gs,
                                                                         buf.template scatter<false>());
      }
      TVOPS_CUDA_CHECK(cudaGetLastError());
    }
    if (cl) {
      for (std::size_t l = 0; l < shapes.size(); ++l)
        buf.finish_channels_last(all.data<T>() + base[l], base[l], shapes[l][0], shapes[l][1],
                                 shapes[l][2] * shapes[l][3], stream);
    } else {
      buf.finish(all.data<T>(), 0, total, stream);
    }
  });
  return result;
}

}  // namespace

Tensor roi_align(const Tensor& input, const Tensor& rois, double spatial_scale, int64_t pooled_height,
                 int64_t pooled_width, int64_t sampling_ratio, bool aligned, const Context& ctx) {
  DeviceGuard guard(input.device().index);
  const int64_t K = rois.size(0), C = input.size(1);
  Tensor out = Tensor::empty({K, C, pooled_height, pooled_width}, input.dtype(), input.device(), ctx);
  if (out.numel() == 0) return out;
  // Empty maps need no special case: their samples are all outside, and with N = 0
  // every batch index is invalid, so the kernel writes zeros.
  forward<false>("roi_align", {input}, {spatial_scale}, rois, nullptr, C, pooled_height, pooled_width,
                 sampling_ratio, aligned, out, nullptr, ctx);
  return out;
}

Tensor roi_align_backward(const Tensor& grad, const Tensor& rois, double spatial_scale, int64_t pooled_height,
                          int64_t pooled_width, int64_t batch, int64_t channels, int64_t height, int64_t width,
                          int64_t sampling_ratio, bool aligned, bool deterministic, const Context& ctx) {
  DeviceGuard guard(grad.device().index);
  return backward<false>("roi_align_backward", grad, {spatial_scale}, rois, nullptr,
                         {{batch, channels, height, width}}, pooled_height, pooled_width, sampling_ratio, aligned,
                         deterministic, ctx)[0];
}

std::pair<Tensor, Tensor> ps_roi_align(const Tensor& input, const Tensor& rois, double spatial_scale,
                                       int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                                       const Context& ctx) {
  DeviceGuard guard(input.device().index);
  const int64_t K = rois.size(0), C_out = input.size(1) / (pooled_height * pooled_width);
  Tensor out = Tensor::empty({K, C_out, pooled_height, pooled_width}, input.dtype(), input.device(), ctx);
  Tensor mapping = Tensor::empty({K, C_out, pooled_height, pooled_width}, DType::Int32, input.device(), ctx);
  if (out.numel() == 0) return {out, mapping};
  forward<true>("ps_roi_align", {input}, {spatial_scale}, rois, nullptr, C_out, pooled_height, pooled_width,
                sampling_ratio, true, out, mapping.data<int32_t>(), ctx);
  return {out, mapping};
}

Tensor ps_roi_align_backward(const Tensor& grad, const Tensor& rois, double spatial_scale, int64_t pooled_height,
                             int64_t pooled_width, int64_t sampling_ratio, int64_t batch, int64_t channels,
                             int64_t height, int64_t width, bool deterministic, const Context& ctx) {
  DeviceGuard guard(grad.device().index);
  return backward<true>("ps_roi_align_backward", grad, {spatial_scale}, rois, nullptr,
                        {{batch, channels, height, width}}, pooled_height, pooled_width, sampling_ratio, true,
                        deterministic, ctx)[0];
}

Tensor multi_scale_roi_align(const std::vector<Tensor>& features, const std::vector<double>& scales,
                             const Tensor& rois, const Tensor& levels, int64_t pooled_height, int64_t pooled_width,
                             int64_t sampling_ratio, bool aligned, const Context& ctx) {
  const char* op = "multi_scale_roi_align";
  TVOPS_CHECK(features.size() <= std::size_t(kMaxLevels), Value, op, ": at most ", kMaxLevels,
              " feature maps on CUDA, got ", features.size());
  DeviceGuard guard(rois.device().index);
  const int64_t K = rois.size(0), C = features[0].size(1);
  Tensor out = Tensor::empty({K, C, pooled_height, pooled_width}, features[0].dtype(), rois.device(), ctx);
  if (out.numel() == 0) return out;
  const Tensor lv = levels.contiguous(ctx);
  forward<false>(op, features, scales, rois, lv.data<int64_t>(), C, pooled_height, pooled_width, sampling_ratio,
                 aligned, out, nullptr, ctx);
  return out;
}

std::vector<Tensor> multi_scale_roi_align_backward(const Tensor& grad, const Tensor& rois, const Tensor& levels,
                                                   const std::vector<double>& scales,
                                                   const std::vector<std::vector<int64_t>>& shapes,
                                                   int64_t sampling_ratio, bool aligned, bool deterministic,
                                                   const Context& ctx) {
  const char* op = "multi_scale_roi_align_backward";
  TVOPS_CHECK(shapes.size() <= std::size_t(kMaxLevels), Value, op, ": at most ", kMaxLevels,
              " feature maps on CUDA, got ", shapes.size());
  DeviceGuard guard(grad.device().index);
  const Tensor lv = levels.contiguous(ctx);
  return backward<false>(op, grad, scales, rois, lv.data<int64_t>(), shapes, grad.size(2), grad.size(3),
                         sampling_ratio, aligned, deterministic, ctx);
}

}  // namespace tvops::cuda
