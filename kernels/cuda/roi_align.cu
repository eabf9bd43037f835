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
// roi_align's forward on NCHW maps samples shared-memory windows instead: of map tiles
// for float math and 2 x 2 grids (align_forward_lanes on sm90-class shared memory for
// pooled sizes up to 7 x 7, align_forward_tiles otherwise), of RoI groups for the RoIs the
// tiles do not take and other grids or float64 (align_forward_win4, _win),
// and both directions take channels-last kernels where those fit
// (align_forward_cl, align_backward_cl; the latter merges each bin's corners that share
// a pixel and adds 4 channels an atomic for float sums). The deterministic backward of
// fixed sampling grids sums by map tiles without atomics (align_backward_tiles).
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstdint>
#include <cstring>
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
// level_of[k]; roi_align and ps_roi_align have one level. Kernels take this and the
// plans as __grid_constant__ parameters: their arrays are indexed by a level known only
// at run time, which otherwise makes every thread copy them to local memory first
// (~120 bytes a thread; the tile forward ran 5-10% faster without it).
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
  // The same for a grid of G samples known at compile time (G = 2: the division is exact
  // as a product, which the compiler emits instead of a division).
  template <int G>
  __device__ A y_at(int ph, int iy) const {
    return start_h + ph * bin_h + static_cast<A>(iy + .5f) * bin_h / static_cast<A>(G);
  }
  template <int G>
  __device__ A x_at(int pw, int ix) const {
    return start_w + pw * bin_w + static_cast<A>(ix + .5f) * bin_w / static_cast<A>(G);
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
__global__ void __launch_bounds__(kThreads)
    align_forward(const __grid_constant__ AlignArgs<T, A> a, T* out, int32_t* mapping) {
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
    align_backward(const __grid_constant__ AlignArgs<T, A> a, const T* grad, Strides4 gs, roi::Scatter<A, D> sc) {
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
__global__ void __launch_bounds__(kThreads) align_forward_cl(const __grid_constant__ AlignArgs<T, A> a, T* out) {
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

// Adds VEC channels' values at `at` (channel stride cs): one 16-byte atomic for float sums
// (sm90 on; older targets add the 4 channels one by one).
template <int VEC, typename A, bool D>
__device__ inline void scatter_vec(const roi::Scatter<A, D>& sc, int64_t at, int64_t cs, const A (&v)[VEC], A unit) {
  if constexpr (VEC == 4 && !D && std::is_same_v<A, float> && TVOPS_CUDA_ARCH >= 90) {
    atomicAdd(reinterpret_cast<float4*>(sc.out + at), make_float4(v[0], v[1], v[2], v[3]));
  } else {
#pragma unroll
    for (int e = 0; e < VEC; ++e) sc.add(at + e * cs, v[e], unit);
  }
}

// Folds corners of one bin axis that land on the same row (or column) into the first:
// a bin's two samples share a pixel whenever the bin is under ~4 pixels wide.
template <int E, typename A>
__device__ inline void merge_corners(const int (&p)[E], A (&w)[E]) {
#pragma unroll
  for (int b = 1; b < E; ++b)
#pragma unroll
    for (int a = 0; a < b; ++a) {
      const bool m = p[a] == p[b];
      w[a] += m ? w[b] : A(0);
      w[b] = m ? A(0) : w[b];
    }
}

// CH channels a block. VEC = 4 (float sums, channels a multiple of 4): a lane adds 4
// channels with one 16-byte atomic, CH / 4 lanes a bin. MERGE (fixed grids): a bin's
// corners on the same row or column are summed first and zero weights skipped, fewer
// atomics for the same sums up to rounding; only for finite gradients (0 * inf must stay
// NaN as torchvision adds it), others take the tap-by-tap scatter.
template <typename T, typename A, bool D, int G, int VEC, bool MERGE, int CH>
__global__ void __launch_bounds__(kThreads, sizeof(A) == 4 ? 4 : 1)  // float: 64 registers, 4 blocks an SM
    align_backward_cl(const __grid_constant__ AlignArgs<T, A> a, const T* grad, Strides4 gs, roi::Scatter<A, D> sc) {
  __shared__ AxisSample<A> ys[kTableCap], xs[kTableCap];
  extern __shared__ __align__(16) unsigned char stage_raw[];
  A* stage = reinterpret_cast<A*>(stage_raw);
  const int k = blockIdx.x, c0 = blockIdx.y * CH;
  const Geometry<A> g = roi_geometry<T, A, false>(a, k);
  if (g.b < 0) return;  // uniform over the block
  fill_tables(g, a.PH, a.PW, ys, xs);
  const int bins = a.PH * a.PW, nc = min(CH, a.C - c0);
  for (int i = threadIdx.x; i < nc * bins; i += blockDim.x) {
    const int c = c0 + i / bins, bin = i % bins;
    stage[i] = roi::load(grad + k * gs.n + c * gs.c + (bin / a.PW) * gs.h + (bin % a.PW) * gs.w);
  }
  __syncthreads();
  const A unit = D ? sc.unit() : A(1);
  constexpr int L = CH / VEC, BW = kLanes / L;  // lanes a bin, bins a warp
  static_assert(L <= kLanes && kLanes % L == 0, "a bin's lanes within a warp");
  const int lane = threadIdx.x % kLanes, warp = threadIdx.x / kLanes, warps = blockDim.x / kLanes;
  const int cl = (lane % L) * VEC, sub = lane / L;
  if (cl >= nc) return;  // no barrier below
  const A count = static_cast<A>(g.gh * g.gw);
  // torchvision's grad * w / count: for a fixed grid of a power-of-two count the division
  // is exactly a product by its inverse, which spares a full division per channel and tap
  // (on ra7 most of this kernel's instructions).
  constexpr bool pow2 = G > 0 && ((G * G) & (G * G - 1)) == 0;
  constexpr A inv = A(1) / A(G > 0 ? G * G : 1);
  const Strides4 s = a.strides[g.level];
  const int64_t plane = a.base[g.level] + g.b * s.n + (c0 + cl) * s.c;
  const int gh = G > 0 ? G : g.gh, gw = G > 0 ? G : g.gw;
  for (int bin = warp * BW + sub; bin < bins; bin += warps * BW) {
    const int ph = bin / a.PW, pw = bin % a.PW;
    A gv[VEC], v[VEC];
    bool finite = true;
#pragma unroll
    for (int e = 0; e < VEC; ++e) {
      gv[e] = stage[(cl + e) * bins + bin];
      finite = finite && isfinite(gv[e]);
    }
    auto tap = [&](int64_t at, A w) {
#pragma unroll
      for (int e = 0; e < VEC; ++e) v[e] = pow2 ? gv[e] * w * inv : gv[e] * w / count;
      scatter_vec(sc, at, s.c, v, unit);
    };
    if constexpr (MERGE && G > 0) {
      if (finite) {
        constexpr int E = 2 * G;
        int ry[E], cx[E];
        A wy[E], wx[E];
#pragma unroll
        for (int i = 0; i < G; ++i) {
          const AxisSample<A> Y = y_sample(g, ys, ph, i), X = x_sample(g, xs, pw, i);
          ry[2 * i] = Y.lo, ry[2 * i + 1] = Y.hi, cx[2 * i] = X.lo, cx[2 * i + 1] = X.hi;
          wy[2 * i] = Y.lo >= 0 ? Y.h : A(0), wy[2 * i + 1] = Y.lo >= 0 ? Y.l : A(0);
          wx[2 * i] = X.lo >= 0 ? X.h : A(0), wx[2 * i + 1] = X.lo >= 0 ? X.l : A(0);
        }
        merge_corners(ry, wy);
        merge_corners(cx, wx);
#pragma unroll
        for (int i = 0; i < E; ++i) {
          if (wy[i] == A(0)) continue;
#pragma unroll
          for (int j = 0; j < E; ++j)
            if (wx[j] != A(0)) tap(plane + ry[i] * s.h + cx[j] * s.w, wy[i] * wx[j]);
        }
        continue;
      }
    }
#pragma unroll
    for (int iy = 0; iy < gh; ++iy) {
      const AxisSample<A> Y = y_sample(g, ys, ph, iy);
      if (Y.lo < 0) continue;
#pragma unroll
      for (int ix = 0; ix < gw; ++ix) {
        const AxisSample<A> X = x_sample(g, xs, pw, ix);
        if (X.lo < 0) continue;
        tap(plane + Y.lo * s.h + X.lo * s.w, Y.h * X.h);
        tap(plane + Y.lo * s.h + X.hi * s.w, Y.h * X.l);
        tap(plane + Y.hi * s.h + X.lo * s.w, Y.l * X.h);
        tap(plane + Y.hi * s.h + X.hi * s.w, Y.l * X.l);
      }
    }
  }
}

// ---- roi_align on NCHW maps through shared-memory windows ----
//
// The RoIs are grouped (on the device, by group_rois) by the cell of a coarse grid
// (kTune.roi_group_cell pixels a side, per level and image) where their footprint
// starts, up to kTune.roi_group_max a group. A block takes one group and a chunk of
// channels: it loads the union of the group's footprints (the window) for as many
// channels as fit in shared memory, with coalesced row reads straight from the NCHW
// planes (16-byte vectors where the strides allow), and samples every RoI of the group
// from there. Overlapping RoIs thus share one read of their pixels, and no
// channels-last copy of the map is needed. blockIdx.x runs over the groups, so the
// blocks in flight share a chunk of channels whose planes stay in L2.
// RoIs whose sampling grid exceeds the tables or whose own footprint exceeds the
// window ("slow") are computed straight from global memory; RoIs of no image pool
// zeros. A group whose union does not fit takes its RoIs one window at a time.
// (A backward on the same windows, summing in shared memory, ran 3x slower than the
// channels-last one on an H200: shared-memory float atomics are compare-and-swap
// loops and neighbouring bins' lanes collide. The backward stays channels-last.)
constexpr int kGroupThreads = 1024;
constexpr int kMaxBuckets = 4096;
constexpr int kWinBytes = kTune.roi_window_bytes;
constexpr int kTableBytes = 16 * 1024;  // axis tables of a group, at most
enum : int { kZero = 0, kFast = 1, kSlow = 2 };

struct CellGrid {
  int cell, cell_h, buckets;  // pixels a cell: cell columns, cell_h rows; buckets: every cell of every level and image, plus one for RoIs of no image
  int ch[kMaxLevels], cw[kMaxLevels], base[kMaxLevels];
};

struct WinPlan {
  const int* order;    // RoI ids, bucket after bucket
  const int2* groups;  // [start, end) of each group in `order`
  const int* count;    // number of groups
  int group_max, gcap, chunk, win_bytes;  // RoIs a group, samples an axis a bin, channels a block, window bytes
};

// Bucket of RoI k: the cell of its clamped top-left corner.
template <typename T, typename A>
__device__ int bucket_of(const AlignArgs<T, A>& a, const CellGrid& cg, int k) {
  const Geometry<A> g = roi_geometry<T, A, false>(a, k);
  if (g.b < 0 || g.H <= 0 || g.W <= 0) return cg.buckets - 1;
  const A y0 = g.start_h + min(A(0), g.bin_h * A(a.PH)), x0 = g.start_w + min(A(0), g.bin_w * A(a.PW));
  const A fy = fmin(fmax(y0, A(0)), A(g.H - 1)), fx = fmin(fmax(x0, A(0)), A(g.W - 1));  // NaN -> 0
  const int cy = min(static_cast<int>(fy) / cg.cell_h, cg.ch[g.level] - 1);
  const int cx = min(static_cast<int>(fx) / cg.cell, cg.cw[g.level] - 1);
  return cg.base[g.level] + (g.b * cg.ch[g.level] + cy) * cg.cw[g.level] + cx;
}

// Exclusive scan of one int per thread over the block (blockDim.x a multiple of 32).
__device__ inline int block_exclusive_scan(int v, int* warp_sums, int* total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  int x = v;
  for (int o = 1; o < 32; o *= 2) {
    const int y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) warp_sums[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int s = lane < warps ? warp_sums[lane] : 0;
    for (int o = 1; o < 32; o *= 2) {
      const int y = __shfl_up_sync(0xffffffffu, s, o);
      if (lane >= o) s += y;
    }
    if (lane < warps) warp_sums[lane] = s;
    if (lane == 31) *total = s;
  }
  __syncthreads();
  const int r = x - v + (warp > 0 ? warp_sums[warp - 1] : 0);
  __syncthreads();
  return r;
}

// The tile forward (align_forward_tiles, below): a block owns a kFwdTile-pixel square
// tile of one level's map in one image, loads it with a kFwdHalo-pixel margin below and
// right once, and computes every bin whose samples start in it. The plan lists, per
// tile, records of a RoI and the rectangle of its bins that start there.
constexpr int kFwdTile = 32;                           // = the plan's cell
constexpr int kFwdHalo = 6;
constexpr int kFwdRows = kFwdTile + kFwdHalo;          // window rows (and columns) a bin may touch
constexpr int kFwdPitch = 40;                          // float4 pixels a window row (whole 16-byte loads)
constexpr int kFwdPlane = 1 + kFwdRows * kFwdPitch;    // a quad plane: a zero pixel, then the window
constexpr int kFwdInvalid = -(1 << 20);                // tap row / column of a sample outside the map
constexpr int kFwdRanges = 4;                          // tile rows (columns) one RoI's bins may start in
constexpr int kFwdRecords = 64;                        // records a block holds at once
// A bin at most this many pixels a side keeps its samples' rows within kFwdHalo - 2 of
// the first (floor(side / 2) <= kFwdHalo - 2, one pixel to spare for float rounding).
constexpr float kFwdMaxBin = 2.f * (kFwdHalo - 2) - 1.f;

// A bin's taps along one axis, placed in a window: align_forward_tiles' rows and columns,
// and (the whole map as the window) the lane tables that tile_descriptors writes.
struct AxisTaps {
  int4 at;    // the rows / columns lo, hi of both samples as `place` gives them; kFwdInvalid: no sample
  float4 w;   // their weights (0 for no sample)
  bool out;   // a sample's pixels leave the window
};

// The taps of bin index i (samples i * 2, i * 2 + 1) along one axis whose window starts at
// `start` and has `extent` rows / columns. `place` maps a window row / column to its offset.
template <typename Sample, typename Place>
__device__ AxisTaps axis_taps(Sample&& sample, int i, int size, int start, int extent, Place&& place) {
  AxisTaps t;
  const AxisSample<float> s0 = roi::axis_sample(sample(i, 0), size), s1 = roi::axis_sample(sample(i, 1), size);
  const bool v0 = s0.lo >= 0, v1 = s1.lo >= 0;
  t.at = make_int4(v0 ? place(s0.lo - start) : kFwdInvalid, v0 ? place(s0.hi - start) : kFwdInvalid,
                   v1 ? place(s1.lo - start) : kFwdInvalid, v1 ? place(s1.hi - start) : kFwdInvalid);
  t.w = make_float4(v0 ? s0.h : 0.f, v0 ? s0.l : 0.f, v1 ? s1.h : 0.f, v1 ? s1.l : 0.f);
  t.out = (v0 && (s0.lo < start || s0.hi >= start + extent)) || (v1 && (s1.lo < start || s1.hi >= start + extent));
  return t;
}

// Each tile RoI's axis taps, for align_forward_lanes (written by tile_descriptors): entry
// [k][i] of an axis is two int4s: the rows (columns) lo, hi of bin i's two samples
// (kFwdInvalid: no sample), then their weights (h, l of each sample, as float bits; the
// rows' weights times 1/4, the 2 x 2 grid's mean, which is exact).
struct LaneTables {
  int4* y;  // [K][PH][2]
  int4* x;  // [K][PW][2]
};

struct FwdTilePlan {
  const int2* records;    // (RoI, ph0 | ph1 << 8 | pw0 << 16 | pw1 << 24), tile after tile; ends exclusive
  const int* tile_start;  // [tiles + 1]
  CellGrid tiles;         // the plan's cells: kFwdTile columns, kFwdTile (align_forward_tiles) or kLaneTileRows rows
};

// The tile (map row or column index / cell) where bin samples a and b start.
__device__ inline int anchor_tile(float a, float b, int size, int cell) {
  return static_cast<int>(fminf(fmaxf(fminf(a, b), 0.f), float(size - 1))) / cell;
}

// The runs of one axis's bins by the tile they start in: false past kFwdRanges runs or
// when a run skips a tile. Sets the first tile, the step (+1 / -1: bins may run
// backwards, aligned RoIs with negative sizes), the runs and their starts 1.. as bytes.
template <typename Sample>
__device__ bool tile_runs(int n, int size, int cell, Sample&& sample, int& first, int& step, int& runs, int& starts) {
  first = anchor_tile(sample(0, 0), sample(0, 1), size, cell);
  step = 0;
  runs = 1;
  starts = 0;
  int last = first;
  for (int i = 1; i < n; ++i) {
    const int t = anchor_tile(sample(i, 0), sample(i, 1), size, cell);
    if (t == last) continue;
    if (runs == kFwdRanges || (t - last != 1 && t - last != -1) || (step != 0 && t - last != step)) return false;
    step = t - last;
    starts |= i << (8 * (runs - 1));
    ++runs;
    last = t;
  }
  return true;
}

// A RoI's place in the tile forward: x = the tile of its first record, or -1 (then
// y = its bucket for the group kernels); y = y runs | x runs << 4 | (row step < 0) << 8 |
// (column step < 0) << 9 | tiles a row << 12; z / w = the starts of the y / x runs 1..3.
// The tiles take RoIs with an image, 2 x 2 grids, bins of at most kFwdMaxBin pixels and
// finite geometry.
template <typename T>
__device__ int4 tile_descriptor(const AlignArgs<T, float>& a, const CellGrid& cg, int k) {
  const Geometry<float> g = roi_geometry<T, float, false>(a, k);
  const bool fits = g.b >= 0 && g.H > 0 && g.W > 0 && g.gh == 2 && g.gw == 2 && fabsf(g.bin_h) <= kFwdMaxBin &&
                    fabsf(g.bin_w) <= kFwdMaxBin && isfinite(g.start_h) && isfinite(g.start_w);
  int ty, sy, ny, zy, tx, sx, nx, zx;
  if (fits && tile_runs(a.PH, g.H, cg.cell_h, [&](int i, int s) { return g.template y_at<2>(i, s); }, ty, sy, ny, zy) &&
      tile_runs(a.PW, g.W, cg.cell, [&](int i, int s) { return g.template x_at<2>(i, s); }, tx, sx, nx, zx)) {
    const int l = g.level, cw = cg.cw[l];
    return make_int4(cg.base[l] + (g.b * cg.ch[l] + ty) * cw + tx, ny | nx << 4 | (sy < 0) << 8 | (sx < 0) << 9 | cw << 12,
                     zy, zx);
  }
  return make_int4(-1, bucket_of(a, cg, k), 0, 0);
}

// Calls f(tile, ph0 | ph1 << 8 | pw0 << 16 | pw1 << 24) for each record of descriptor d.
template <typename F>
__device__ void for_tile_records(int4 d, int PH, int PW, F&& f) {
  const int ny = d.y & 15, nx = d.y >> 4 & 15, cw = d.y >> 12;
  const int sy = (d.y >> 8 & 1) ? -cw : cw, sx = (d.y >> 9 & 1) ? -1 : 1;
  for (int i = 0; i < ny; ++i) {
    const int y0 = i == 0 ? 0 : d.z >> (8 * (i - 1)) & 255, y1 = i == ny - 1 ? PH : d.z >> (8 * i) & 255;
    for (int j = 0; j < nx; ++j) {
      const int x0 = j == 0 ? 0 : d.w >> (8 * (j - 1)) & 255, x1 = j == nx - 1 ? PW : d.w >> (8 * j) & 255;
      f(d.x + i * sy + j * sx, y0 | y1 << 8 | x0 << 16 | x1 << 24);
    }
  }
}

// Where group_rois puts the tile forward's records (records null: no tile forward).
struct TileRecordsOut {
  int2* records;
  int* tile_start;
  int4* descriptors;  // [K], from tile_descriptors
};

// Each RoI's tile descriptor, for group_rois: a thread a RoI over many blocks, where the
// single-block sort would spend most of its time on this arithmetic (H100 ra7: the plan
// took 16 us with it inside).
// With lane tables, threads K.. write them, an axis entry a thread (every RoI's: those
// the tiles do not take are never read).
template <typename T>
__global__ void tile_descriptors(const __grid_constant__ AlignArgs<T, float> a, const __grid_constant__ CellGrid cg,
                                 int4* descriptors, LaneTables lt) {
  let_next_start();  // group_rois clears its counters meanwhile
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t < a.K) {
    descriptors[t] = tile_descriptor(a, cg, int(t));
    return;
  }
  const int64_t e = t - a.K, per = a.PH + a.PW;
  if (!lt.y || e >= int64_t(a.K) * per) return;
  const int k = int(e / per), i = int(e % per);
  const Geometry<float> g = roi_geometry<T, float, false>(a, k);
  const bool y = i < a.PH;
  const int size = y ? g.H : g.W;
  auto sample = [&](int i_, int s_) { return y ? g.template y_at<2>(i_, s_) : g.template x_at<2>(i_, s_); };
  // the whole map as the window: map rows / columns as they are
  const AxisTaps taps = axis_taps(sample, y ? i : i - a.PH, size, 0, size, [](int v) { return v; });
  const float scale = y ? 0.25f : 1.f;
  int4* out = y ? lt.y + (int64_t(k) * a.PH + i) * 2 : lt.x + (int64_t(k) * a.PW + i - a.PH) * 2;
  out[0] = taps.at;
  const float4 w = taps.w;
  out[1] = make_int4(__float_as_int(w.x * scale), __float_as_int(w.y * scale), __float_as_int(w.z * scale),
                     __float_as_int(w.w * scale));
}

// One block: counting sort of the RoIs by bucket, then the groups (runs of at most
// group_max RoIs of one bucket). The order inside a bucket does not matter: a RoI's
// outputs do not depend on its group (the backward's fixed-point sums neither).
template <typename T, typename A>
__global__ void __launch_bounds__(kGroupThreads)
    group_rois(const __grid_constant__ AlignArgs<T, A> a, const __grid_constant__ CellGrid cg, int group_max,
               int* order, int2* groups, int* count, TileRecordsOut to) {
  __shared__ int start[kMaxBuckets], tstart[kMaxBuckets], sums[32], total;
  let_next_start();  // align_forward_lanes loads its windows meanwhile, then waits for this plan
  const int nb = cg.buckets, nt = to.records ? nb - 1 : 0;  // tiles: every bucket but the no-image one
  for (int i = threadIdx.x; i < nb; i += blockDim.x) start[i] = tstart[i] = 0;
  wait_for_prior();  // launched early after tile_descriptors: its descriptors
  __syncthreads();
  // Each RoI goes to the tile forward (its records) or to a bucket (the grouped kernels);
  // with tiles, by the descriptor tile_descriptors computed.
  auto place = [&](int k, auto&& to_tile, auto&& to_bucket) {
    if (nt > 0) {
      const int4 d = to.descriptors[k];
      if (d.x < 0) return to_bucket(d.y);
      return for_tile_records(d, a.PH, a.PW, to_tile);
    }
    to_bucket(bucket_of(a, cg, k));
  };
  for (int k = threadIdx.x; k < a.K; k += blockDim.x)
    place(k, [&](int t, int) { atomicAdd(&tstart[t], 1); }, [&](int b) { atomicAdd(&start[b], 1); });
  __syncthreads();
  const int per = (nb + blockDim.x - 1) / blockDim.x, lo = min(nb, int(threadIdx.x) * per), hi = min(nb, lo + per);
  int n = 0, ng = 0, nr = 0;
  for (int i = lo; i < hi; ++i) {
    n += start[i];
    ng += (start[i] + group_max - 1) / group_max;
    nr += tstart[i];
  }
  int run = block_exclusive_scan(n, sums, &total);
  int rrun = block_exclusive_scan(nr, sums, &total);
  for (int i = lo; i < min(hi, nt); ++i) {
    to.tile_start[i] = rrun;
    const int m = tstart[i];
    tstart[i] = rrun;
    rrun += m;
  }
  if (nt > 0 && threadIdx.x == 0) to.tile_start[nt] = total;
  int grun = block_exclusive_scan(ng, sums, &total);
  for (int i = lo; i < hi; ++i) {
    const int m = start[i];
    for (int j = 0; j * group_max < m; ++j)
      groups[grun++] = make_int2(run + j * group_max, run + min(m, (j + 1) * group_max));
    start[i] = run;
    run += m;
  }
  if (threadIdx.x == 0) *count = total;  // the last scan's total: the number of groups
  __syncthreads();
  for (int k = threadIdx.x; k < a.K; k += blockDim.x)
    place(k, [&](int t, int ranges) { to.records[atomicAdd(&tstart[t], 1)] = make_int2(k, ranges); },
          [&](int b) { order[atomicAdd(&start[b], 1)] = k; });
}

// Per-RoI state of a block, in shared memory.
struct RoiSlot {
  int k, mode, r0, r1, c0, c1;  // footprint rows [r0, r1] and (aligned) columns [c0, c1); r0 > r1: no sample inside
};

// The window a pass works on: rows [r0, r0 + rows), columns [c0, c0 + cols), rows
// `pitch` apart in shared memory.
struct Window {
  int r0, c0, rows, cols, pitch;
  int only;  // -1: every fast RoI of the group; else that RoI alone
};

// Row pitch = 4 (mod 8) elements: bins a few rows apart then fall in different banks
// (a pitch of 64 would put every bin row of a warp on the same banks).
__device__ inline int window_pitch(int cols) { return cols + ((12 - cols % 8) % 8); }

template <typename A>
struct GroupSmem {
  RoiSlot* slot;
  Geometry<A>* geo;
  AxisSample<A>* ys;
  AxisSample<A>* xs;
  void* win;
  Window* window;
  int ty, tx;
};

__host__ __device__ inline int align16(int v) { return (v + 15) & ~15; }

template <typename A>
__host__ __device__ inline int table_bytes(int group_max, int ty, int tx) {
  return align16(group_max * int(sizeof(RoiSlot))) + align16(group_max * int(sizeof(Geometry<A>))) +
         align16(group_max * (ty + tx) * int(sizeof(AxisSample<A>))) + align16(int(sizeof(Window)));
}

template <typename A>
__device__ GroupSmem<A> carve(unsigned char* smem, int group_max, int ty, int tx) {
  GroupSmem<A> s;
  s.ty = ty;
  s.tx = tx;
  s.slot = reinterpret_cast<RoiSlot*>(smem);
  smem += align16(group_max * int(sizeof(RoiSlot)));
  s.geo = reinterpret_cast<Geometry<A>*>(smem);
  smem += align16(group_max * int(sizeof(Geometry<A>)));
  s.ys = reinterpret_cast<AxisSample<A>*>(smem);
  s.xs = s.ys + group_max * ty;
  smem += align16(group_max * (ty + tx) * int(sizeof(AxisSample<A>)));
  s.window = reinterpret_cast<Window*>(smem);
  smem += align16(int(sizeof(Window)));
  s.win = smem;
  return s;
}

// Geometry, axis tables and footprints of the group's n RoIs; the union window.
// V: the window's columns are aligned to V (vector loads). Ends with a barrier.
template <typename T, typename A>
__device__ void setup_group(const AlignArgs<T, A>& a, const WinPlan& p, const GroupSmem<A>& s, int2 range, int n,
                            int V, int elem_bytes) {
  if (int(threadIdx.x) < n) {
    const int k = p.order[range.x + threadIdx.x];
    const Geometry<A> g = roi_geometry<T, A, false>(a, k);
    s.geo[threadIdx.x] = g;
    RoiSlot r;
    r.k = k;
    r.mode = (g.b < 0 || g.H <= 0 || g.W <= 0) ? kZero : (g.gh <= p.gcap && g.gw <= p.gcap) ? kFast : kSlow;
    s.slot[threadIdx.x] = r;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < n * s.ty; i += blockDim.x) {
    const int j = i / s.ty, e = i - j * s.ty;
    const Geometry<A>& g = s.geo[j];
    if (s.slot[j].mode == kFast && e < a.PH * g.gh) s.ys[i] = roi::axis_sample(g.y(e / g.gh, e % g.gh), g.H);
  }
  for (int i = threadIdx.x; i < n * s.tx; i += blockDim.x) {
    const int j = i / s.tx, e = i - j * s.tx;
    const Geometry<A>& g = s.geo[j];
    if (s.slot[j].mode == kFast && e < a.PW * g.gw) s.xs[i] = roi::axis_sample(g.x(e / g.gw, e % g.gw), g.W);
  }
  __syncthreads();
  if (int(threadIdx.x) < n && s.slot[threadIdx.x].mode == kFast) {
    const int j = threadIdx.x;
    const Geometry<A>& g = s.geo[j];
    int r0 = INT_MAX, r1 = -1, c0 = INT_MAX, c1 = -1;
    const int ny = a.PH * max(g.gh, 0), nx = a.PW * max(g.gw, 0);
    for (int e = 0; e < ny; ++e) {
      const AxisSample<A> y = s.ys[j * s.ty + e];
      if (y.lo >= 0) r0 = min(r0, y.lo), r1 = max(r1, y.hi);
    }
    for (int e = 0; e < nx; ++e) {
      const AxisSample<A> x = s.xs[j * s.tx + e];
      if (x.lo >= 0) c0 = min(c0, x.lo), c1 = max(c1, x.hi);
    }
    RoiSlot& r = s.slot[j];
    if (r1 < 0 || c1 < 0) {
      r.r0 = 1;  // no sample inside: zeros, no window
      r.r1 = 0;
    } else {
      c0 -= c0 % V;
      c1 = c1 + 1 + (V - (c1 + 1) % V) % V;  // exclusive, aligned
      r.r0 = r0;
      r.r1 = r1;
      r.c0 = c0;
      r.c1 = c1;
      if (int64_t(r1 - r0 + 1) * window_pitch(c1 - c0) * elem_bytes > p.win_bytes) r.mode = kSlow;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int r0 = INT_MAX, r1 = -1, c0 = INT_MAX, c1 = -1;
    for (int j = 0; j < n; ++j) {
      const RoiSlot& r = s.slot[j];
      if (r.mode == kFast && r.r0 <= r.r1) r0 = min(r0, r.r0), r1 = max(r1, r.r1), c0 = min(c0, r.c0), c1 = max(c1, r.c1);
    }
    Window w;
    w.only = -1;
    w.r0 = r0;
    w.c0 = c0;
    w.rows = r1 < 0 ? 0 : r1 - r0 + 1;
    w.cols = r1 < 0 ? 0 : c1 - c0;
    w.pitch = window_pitch(w.cols);
    if (int64_t(w.rows) * w.pitch * elem_bytes > p.win_bytes) w.only = 0;  // one RoI a window
    *s.window = w;
  }
  __syncthreads();
}

// Calls pass(window, P channels) for the chunk's channels: the union window, or each
// fast RoI's own window when the union does not fit.
template <typename A, typename Pass>
__device__ void for_windows(const GroupSmem<A>& s, int n, int nc, int cap, Pass&& pass) {
  const Window u = *s.window;
  if (u.only < 0) {
    if (u.rows == 0) return;
    const int P = max(1, min(nc, cap / (u.rows * u.pitch)));
    for (int c = 0; c < nc; c += P) pass(u, c, min(P, nc - c));
    return;
  }
  for (int j = 0; j < n; ++j) {
    const RoiSlot r = s.slot[j];
    if (r.mode != kFast || r.r0 > r.r1) continue;
    const Window w{r.r0, r.c0, r.r1 - r.r0 + 1, r.c1 - r.c0, window_pitch(r.c1 - r.c0), j};
    const int P = max(1, min(nc, cap / (w.rows * w.pitch)));
    for (int c = 0; c < nc; c += P) pass(w, c, min(P, nc - c));
  }
}

// Visits the window's P * rows * (pitch / V) vectors, thread-strided, without a
// division per element: f(channel, row, vector column, flat index). U visits in flight.
// `start` skips that many of the flat indices (a prefetched first round).
template <int U, typename F>
__device__ inline void for_window_vectors(int P, int rows, int pv, F&& f, int start = 0) {
  const int total = P * rows * pv, nt = blockDim.x;
  int i = threadIdx.x + start, row = i / pv, x = i - row * pv, c = row / rows, y = row - c * rows;
  const int sr = nt / pv, sx = nt - sr * pv, sc = sr / rows, sy = sr - sc * rows;
  for (; i < total; i += U * nt) {
    int cc[U], yy[U], xx[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      cc[u] = c;
      yy[u] = y;
      xx[u] = x;
      x += sx;
      y += sy;
      c += sc;
      if (x >= pv) x -= pv, ++y;
      if (y >= rows) y -= rows, ++c;
    }
    f.template run<U>(i, nt, total, cc, yy, xx);
  }
}

// Loads V elements of T (16 bytes when V > 1) as A.
template <typename T, typename A, int V>
__device__ inline void load_vector(const T* src, A (&v)[V]) {
  if constexpr (V == 1) {
    v[0] = roi::load(src);
  } else {
    const uint4 u = __ldg(reinterpret_cast<const uint4*>(src));
    const T* t = reinterpret_cast<const T*>(&u);
#pragma unroll
    for (int e = 0; e < V; ++e) v[e] = static_cast<A>(t[e]);
  }
}

template <typename T, typename A, int V>
struct WindowLoader {
  const T* plane0;  // channel c of the chunk's first pass: plane0 + c * s.c
  Strides4 s;
  A* win;
  int r0, c0, rows, pitch;
  template <int U>
  __device__ void run(int i, int nt, int total, const int* c, const int* y, const int* x) const {
    A v[U][V];
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (i + u * nt < total)
        load_vector<T, A, V>(plane0 + c[u] * s.c + (r0 + y[u]) * s.h + (c0 + x[u] * V) * s.w, v[u]);
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (i + u * nt < total)
#pragma unroll
        for (int e = 0; e < V; ++e) win[(c[u] * rows + y[u]) * pitch + x[u] * V + e] = v[u][e];
  }
};

// The taps of one bin of a fast RoI in the window, for a fixed G x G grid: the window
// offsets and weights of each sample's 4 corners, computed once and used for every
// channel of the pass. Samples outside the map are skipped (not weighted by 0: a
// non-finite pixel times 0 would give NaN where torchvision adds nothing).
template <typename A, int G>
struct BinTaps {
  int o[G * G][4];
  A w[G * G][4];
  bool v[G * G];

  __device__ BinTaps(const AxisSample<A>* ys, const AxisSample<A>* xs, int ph, int pw, const Window& win) {
#pragma unroll
    for (int iy = 0; iy < G; ++iy) {
      const AxisSample<A> Y = ys[ph * G + iy];
      const int r0 = (Y.lo - win.r0) * win.pitch, r1 = (Y.hi - win.r0) * win.pitch;
#pragma unroll
      for (int ix = 0; ix < G; ++ix) {
        const AxisSample<A> X = xs[pw * G + ix];
        const int t = iy * G + ix, c0 = X.lo - win.c0, c1 = X.hi - win.c0;
        v[t] = Y.lo >= 0 && X.lo >= 0;
        o[t][0] = v[t] ? r0 + c0 : 0;
        o[t][1] = v[t] ? r0 + c1 : 0;
        o[t][2] = v[t] ? r1 + c0 : 0;
        o[t][3] = v[t] ? r1 + c1 : 0;
        w[t][0] = Y.h * X.h;
        w[t][1] = Y.h * X.l;
        w[t][2] = Y.l * X.h;
        w[t][3] = Y.l * X.l;
      }
    }
  }

  // torchvision's sum over the samples, divided by the count (G * G: a power of two
  // divides exactly by multiplication, which the compiler does).
  __device__ A value(const A* wc) const {
    A acc = 0;
#pragma unroll
    for (int t = 0; t < G * G; ++t)
      if (v[t]) acc += w[t][0] * wc[o[t][0]] + w[t][1] * wc[o[t][1]] + w[t][2] * wc[o[t][2]] + w[t][3] * wc[o[t][3]];
    return acc / static_cast<A>(G * G);
  }
};

// The same for any grid (adaptive sampling): samples read from the tables per channel.
template <typename A>
__device__ A window_value(const A* wc, const AxisSample<A>* ys, const AxisSample<A>* xs, int ph, int pw, int gh,
                          int gw, const Window& w) {
  A acc = 0;
  for (int iy = 0; iy < gh; ++iy) {
    const AxisSample<A> Y = ys[ph * gh + iy];
    if (Y.lo < 0) continue;
    const A* r0 = wc + (Y.lo - w.r0) * w.pitch - w.c0;
    const A* r1 = wc + (Y.hi - w.r0) * w.pitch - w.c0;
    for (int ix = 0; ix < gw; ++ix) {
      const AxisSample<A> X = xs[pw * gw + ix];
      if (X.lo < 0) continue;
      const A w1 = Y.h * X.h, w2 = Y.h * X.l, w3 = Y.l * X.h, w4 = Y.l * X.l;
      acc += w1 * r0[X.lo] + w2 * r0[X.hi] + w3 * r1[X.lo] + w4 * r1[X.hi];
    }
  }
  return acc / static_cast<A>(max(gh * gw, 1));
}

// roi_align of one output straight from global memory (slow RoIs).
template <typename T, typename A>
__device__ A direct_value(const Geometry<A>& g, const T* plane, const Strides4& s, int ph, int pw) {
  A acc = 0;
  for (int iy = 0; iy < g.gh; ++iy) {
    const AxisSample<A> Y = roi::axis_sample(g.y(ph, iy), g.H);
    if (Y.lo < 0) continue;
    for (int ix = 0; ix < g.gw; ++ix) {
      const AxisSample<A> X = roi::axis_sample(g.x(pw, ix), g.W);
      if (X.lo < 0) continue;
      const A v1 = roi::load(plane + Y.lo * s.h + X.lo * s.w), v2 = roi::load(plane + Y.lo * s.h + X.hi * s.w);
      const A v3 = roi::load(plane + Y.hi * s.h + X.lo * s.w), v4 = roi::load(plane + Y.hi * s.h + X.hi * s.w);
      const A w1 = Y.h * X.h, w2 = Y.h * X.l, w3 = Y.l * X.h, w4 = Y.l * X.l;
      acc += w1 * v1 + w2 * v2 + w3 * v3 + w4 * v4;
    }
  }
  return acc / static_cast<A>(max(g.gh * g.gw, 1));
}

// The group's RoIs that no window served: zeros for a bad batch index or an empty RoI,
// and sampling straight from global memory for RoIs too big for a window or with
// other sampling grids (kSlow). Shared by the window kernels.
template <typename T, typename A>
__device__ void finish_unwindowed(const AlignArgs<T, A>& a, const GroupSmem<A>& s, int n, int nc, int c_lo,
                                  const T* chunk0, const Strides4& st, T* out) {
  const int bins = a.PH * a.PW;
  for (int j = 0; j < n; ++j) {
    const RoiSlot r = s.slot[j];
    if (r.mode == kFast && r.r0 <= r.r1) continue;
    const Geometry<A>& g = s.geo[j];
    T* o = out + (int64_t(r.k) * a.C + c_lo) * bins;
    for (int i = threadIdx.x; i < nc * bins; i += blockDim.x) {
      A v = 0;
      if (r.mode == kSlow) {
        const int c = i / bins, bin = i % bins;
        v = direct_value<T, A>(g, chunk0 + int64_t(c) * st.c, st, bin / a.PW, bin % a.PW);
      }
      o[i] = roi::store_cast<T>(v);
    }
  }
}

template <typename T, typename A, int G, int V>
__global__ void __launch_bounds__(kThreads, 3)
    align_forward_win(const __grid_constant__ AlignArgs<T, A> a, const __grid_constant__ WinPlan p, T* out) {
  extern __shared__ __align__(16) unsigned char smem[];
  if (int(blockIdx.x) >= *p.count) return;
  const int2 range = p.groups[blockIdx.x];
  const int n = range.y - range.x;
  const int c_lo = blockIdx.y * p.chunk, nc = min(a.C, c_lo + p.chunk) - c_lo;
  const GroupSmem<A> s = carve<A>(smem, p.group_max, a.PH * p.gcap, a.PW * p.gcap);
  setup_group(a, p, s, range, n, V, int(sizeof(A)));
  const int bins = a.PH * a.PW;
  // Level and image are the group's (its bucket's); slow and zero RoIs are handled below.
  const Geometry<A> g0 = s.geo[0];
  const int level = g0.b >= 0 ? g0.level : 0;
  const Strides4 st = a.strides[level];
  const T* chunk0 = a.maps[level] + (g0.b >= 0 ? g0.b : 0) * st.n + int64_t(c_lo) * st.c;
  A* win = static_cast<A*>(s.win);
  for_windows<A>(s, n, nc, p.win_bytes / int(sizeof(A)), [&](const Window& w, int c, int P) {
    WindowLoader<T, A, V> loader{chunk0 + int64_t(c) * st.c, st, win, w.r0, w.c0, w.rows, w.pitch};
    for_window_vectors<4>(P, w.rows, w.cols / V, loader);
    __syncthreads();
    const int F = w.rows * w.pitch;
    const int first = w.only < 0 ? 0 : w.only, last = w.only < 0 ? n : w.only + 1;
    for (int i = threadIdx.x; i < (last - first) * bins; i += blockDim.x) {
      const int j = first + i / bins, bin = i % bins;
      const RoiSlot r = s.slot[j];
      if (r.mode != kFast || r.r0 > r.r1) continue;
      const int ph = bin / a.PW, pw = bin - ph * a.PW;
      const AxisSample<A>* ys = s.ys + j * s.ty;
      const AxisSample<A>* xs = s.xs + j * s.tx;
      T* o = out + (int64_t(r.k) * a.C + c_lo + c) * bins + bin;
      if constexpr (G > 0) {
        const BinTaps<A, G> taps(ys, xs, ph, pw, w);
        for (int cc = 0; cc < P; ++cc) o[int64_t(cc) * bins] = roi::store_cast<T>(taps.value(win + cc * F));
      } else {
        const Geometry<A>& g = s.geo[j];
        for (int cc = 0; cc < P; ++cc)
          o[int64_t(cc) * bins] = roi::store_cast<T>(window_value(win + cc * F, ys, xs, ph, pw, g.gh, g.gw, w));
      }
    }
    __syncthreads();
  });
  finish_unwindowed(a, s, n, nc, c_lo, chunk0, st, out);
}

// ---- Channel-interleaved windows (float arithmetic, 2 x 2 sampling grids) ----
//
// The same groups and windows, but a window pixel holds 4 channels (one float4), the
// window is a stack of such quad planes, and each thread takes a (RoI, bin) item for
// every quad of the pass: its 16 taps (offsets and weights) are computed once and each
// tap is one 16-byte shared load that feeds 4 channels' FMAs. Samples outside the map
// point at a zero pixel after each plane with weight 0 (no branch; 0 * 0 adds nothing,
// as torchvision adds nothing for them). Columns are stored swizzled within groups of
// 4 (swz4) so that a quarter warp writing 8 neighbouring 4-column vectors of a row hits
// 8 different 16-byte bank groups. float, float16 and bfloat16 maps take it (the same
// float32 arithmetic, so 16-bit results stay our float32 result rounded); float64 and
// adaptive grids keep align_forward_win.
constexpr int kWin4Bytes = kTune.roi_window4_bytes;

__device__ inline int swz4(int col) { return col ^ ((col >> 3) & 3); }

// The tile forward's column order: within each group of 8 columns, rotated by the group
// index, so that 8 lanes reading columns a stride of 1, 2, 3, 4 or 8 apart in one row hit
// 8 different 16-byte bank groups (and a lane's 4 stored neighbours spread as well).
__device__ inline int skew8(int col) { return (col & ~7) | ((col + (col >> 3)) & 7); }

// Column orders of a quad window: swz4 (the group windows), skew8 (the tile forward),
// swz4 with the columns at or past `pitch` dropped (the lane tile forward: its window rows
// are not whole vectors; swz4 keeps columns within their aligned 4, so none of the
// window's moves past its end).
enum class Cols { Swz4, Skew8, Swz4Clipped };

// Loads the pass's quads: a job is (quad, row, V columns): 4 channels x V columns read
// from the NCHW planes (16-byte vectors when V > 1), written as V float4 pixels (columns
// in ORDER).
template <typename T, int V, Cols ORDER = Cols::Swz4>
struct QuadLoader {
  const T* plane0;  // first channel of the pass
  Strides4 s;
  float4* win;
  int r0, c0, pitch, plane, nch, W;  // plane: pixels a quad (rows * pitch + the zero pixel); nch: channels left
  __device__ void fetch(bool on, int q, int y, int x, float (&v)[4][V]) const {
#pragma unroll
    for (int ch = 0; ch < 4; ++ch) {
      const int c = q * 4 + ch;
      if (on && c < nch && (V > 1 || c0 + x < W)) {
        load_vector<T, float, V>(plane0 + c * s.c + (r0 + y) * s.h + (c0 + x * V) * s.w, v[ch]);
      } else {
#pragma unroll
        for (int e = 0; e < V; ++e) v[ch][e] = 0.f;
      }
    }
  }
  __device__ void put(int q, int y, int x, const float (&v)[4][V]) const {
    float4* row = win + q * plane + y * pitch;
#pragma unroll
    for (int e = 0; e < V; ++e) {
      const int col = ORDER == Cols::Skew8 ? skew8(x * V + e) : swz4(x * V + e);
      if (ORDER != Cols::Swz4Clipped || col < pitch) row[col] = make_float4(v[0][e], v[1][e], v[2][e], v[3][e]);
    }
  }
  template <int U>
  __device__ void run(int i, int nt, int total, const int* q, const int* y, const int* x) const {
    float v[U][4][V];
#pragma unroll
    for (int u = 0; u < U; ++u) fetch(i + u * nt < total, q[u], y[u], x[u], v[u]);
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (i + u * nt < total) put(q[u], y[u], x[u], v[u]);
  }
};

// A thread's first job of the next pass, loaded into registers before this pass samples
// so that its latency hides under the sampling; stored after the pass's closing barrier.
template <typename T, int V>
struct QuadPrefetch {
  float v[4][V];
  int q, y, x;
  bool on;
  __device__ void fetch(const QuadLoader<T, V>& ld, int Q, int rows, int pv) {
    const int i = threadIdx.x, row = i / pv;
    on = i < Q * rows * pv;
    x = i - row * pv;
    q = row / rows;
    y = row - q * rows;
    ld.fetch(on, q, y, x, v);
  }
  __device__ void put(const QuadLoader<T, V>& ld) const {
    if (on) ld.put(q, y, x, v);
  }
};

// One bin of a 2 x 2 grid for the 4 channels of a quad plane: its 16 taps (offsets `o`
// into `wq`, weights `w`) summed in torchvision's order and divided by 4 (exactly), stored
// `stride` apart for the first `left` channels.
template <typename T>
__device__ inline void quad_bin(const float4* wq, const int (&o)[16], const float (&w)[16], T* out, int stride,
                                int left) {
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
  for (int t = 0; t < 16; ++t) {
    const float4 v = wq[o[t]];
    acc[0] = fmaf(w[t], v.x, acc[0]);
    acc[1] = fmaf(w[t], v.y, acc[1]);
    acc[2] = fmaf(w[t], v.z, acc[2]);
    acc[3] = fmaf(w[t], v.w, acc[3]);
  }
#pragma unroll
  for (int ch = 0; ch < 4; ++ch)
    if (ch < left) out[int64_t(ch) * stride] = roi::store_cast<T>(acc[ch] * 0.25f);
}

// The pass's outputs: every fast RoI of [first, last) x bins, for quads [0, Q) of `win`
// (channels c_first on; `left` of them exist). A quarter warp takes one bin row (lanes =
// pw, padded to 8), so its 16-byte tap loads read one or two window rows at neighbouring
// columns: distinct bank groups after swz4, where mixed rows collided.
template <typename T>
__device__ void sample_quads(const AlignArgs<T, float>& a, const GroupSmem<float>& s, const Window& w,
                             const float4* win, int Q, int left, int c_first, int first, int last, T* out) {
  const int plane = w.rows * w.pitch + 1, zero = plane - 1;
  const int PH = a.PH, PW = a.PW, bins = PH * PW;
  auto item = [&](int j, int ph, int pw) {
    const RoiSlot r = s.slot[j];
    if (r.mode != kFast || r.r0 > r.r1) return;
    const AxisSample<float>* ys = s.ys + j * s.ty + ph * 2;
    const AxisSample<float>* xs = s.xs + j * s.tx + pw * 2;
    int o[16];
    float wt[16];
#pragma unroll
    for (int iy = 0; iy < 2; ++iy) {
      const AxisSample<float> Y = ys[iy];
      const int ry0 = (Y.lo - w.r0) * w.pitch, ry1 = (Y.hi - w.r0) * w.pitch;
#pragma unroll
      for (int ix = 0; ix < 2; ++ix) {
        const AxisSample<float> X = xs[ix];
        const int cx0 = swz4(X.lo - w.c0), cx1 = swz4(X.hi - w.c0), t = (iy * 2 + ix) * 4;
        const bool ok = Y.lo >= 0 && X.lo >= 0;
        o[t + 0] = ok ? ry0 + cx0 : zero;
        o[t + 1] = ok ? ry0 + cx1 : zero;
        o[t + 2] = ok ? ry1 + cx0 : zero;
        o[t + 3] = ok ? ry1 + cx1 : zero;
        wt[t + 0] = ok ? Y.h * X.h : 0.f;
        wt[t + 1] = ok ? Y.h * X.l : 0.f;
        wt[t + 2] = ok ? Y.l * X.h : 0.f;
        wt[t + 3] = ok ? Y.l * X.l : 0.f;
      }
    }
    T* o_ = out + (int64_t(r.k) * a.C + c_first) * bins + ph * PW + pw;
    for (int q = 0; q < Q; ++q) quad_bin(win + q * plane, o, wt, o_ + int64_t(q) * 4 * bins, bins, left - q * 4);
  };
  // Lanes of a bin row: a power of two, so a thread keeps its pw and steps rows without
  // dividing (use_window keeps PW * 2 <= 64).
  const int R = PW <= 8 ? 8 : PW <= 16 ? 16 : 32, per = int(blockDim.x) / R, pw = int(threadIdx.x) & (R - 1);
  if (pw >= PW) return;
  const int dj = per / PH, dph = per - dj * PH;
  int row = int(threadIdx.x) / R, jj = row / PH, ph = row - jj * PH;
  for (; jj < last - first;) {
    item(first + jj, ph, pw);
    jj += dj;
    ph += dph;
    if (ph >= PH) ph -= PH, ++jj;
  }
}

// One group of align_forward_win4: its RoIs' windows for the block's chunk of channels.
template <typename T, int V>
__device__ void win4_group(const AlignArgs<T, float>& a, const WinPlan& p, int2 range, unsigned char* smem, T* out) {
  using A = float;
  const int n = range.y - range.x;
  const int c_lo = blockIdx.y * p.chunk, nc = min(a.C, c_lo + p.chunk) - c_lo;
  const GroupSmem<A> s = carve<A>(smem, p.group_max, a.PH * 2, a.PW * 2);
  setup_group(a, p, s, range, n, V > 4 ? V : 4, int(sizeof(float4)));  // columns in whole swizzle groups
  const Geometry<A> g0 = s.geo[0];
  const int level = g0.b >= 0 ? g0.level : 0;
  const Strides4 st = a.strides[level];
  const T* chunk0 = a.maps[level] + (g0.b >= 0 ? g0.b : 0) * st.n + int64_t(c_lo) * st.c;
  float4* win = static_cast<float4*>(s.win);
  const int cap = (p.win_bytes + int(sizeof(float4))) / int(sizeof(float4));  // pixels, zero pixels included
  const int nq = (nc + 3) / 4;
  const int map_w = a.W[level];
  auto run = [&](const Window& w) {
    const int plane = w.rows * w.pitch + 1, pv = w.cols / V;
    const int first = w.only < 0 ? 0 : w.only, last = w.only < 0 ? n : w.only + 1;
    const int Qmax = max(1, min(nq, cap / plane)), passes = (nq + Qmax - 1) / Qmax;
    const int Q = (nq + passes - 1) / passes;  // as even as the passes allow
    auto loader = [&](int q0) {
      return QuadLoader<T, V>{chunk0 + int64_t(q0) * 4 * st.c, st, win, w.r0, w.c0, w.pitch, plane, nc - q0 * 4,
                              map_w};
    };
    QuadPrefetch<T, V> pf;
    bool fetched = false;
    for (int q0 = 0; q0 < nq; q0 += Q) {
      const int Qc = min(Q, nq - q0);
      const QuadLoader<T, V> ld = loader(q0);
      if (fetched) pf.put(ld);
      for_window_vectors<2>(Qc, w.rows, pv, ld, fetched ? int(blockDim.x) : 0);
      if (int(threadIdx.x) < Qc) win[threadIdx.x * plane + plane - 1] = make_float4(0.f, 0.f, 0.f, 0.f);
      __syncthreads();
      fetched = q0 + Q < nq;
      if (fetched) pf.fetch(loader(q0 + Q), min(Q, nq - q0 - Q), w.rows, pv);
      sample_quads(a, s, w, win, Qc, nc - q0 * 4, c_lo + q0 * 4, first, last, out);
      __syncthreads();
    }
  };
  const Window u = *s.window;
  if (u.only < 0) {
    if (u.rows > 0) run(u);
  } else {
    for (int j = 0; j < n; ++j) {
      const RoiSlot r = s.slot[j];
      if (r.mode != kFast || r.r0 > r.r1) continue;
      run(Window{r.r0, r.c0, r.r1 - r.r0 + 1, r.c1 - r.c0, window_pitch(r.c1 - r.c0), j});
    }
  }
  finish_unwindowed(a, s, n, nc, c_lo, chunk0, st, out);
}

template <typename T, int V>
__global__ void __launch_bounds__(kThreads, 2)
    align_forward_win4(const __grid_constant__ AlignArgs<T, float> a, const __grid_constant__ WinPlan p, T* out) {
  extern __shared__ __align__(16) unsigned char smem[];
  // Blocks stride over the groups: the tile forward launches this for its leftover RoIs
  // with a grid sized for a few waves, not for the most groups there can be.
  for (int gi = blockIdx.x; gi < *p.count; gi += gridDim.x) {
    if (gi != int(blockIdx.x)) __syncthreads();  // the last group's tables are read until its end
    win4_group<T, V>(a, p, p.groups[gi], smem, out);
  }
  // Launched early after align_forward_lanes (whose blocks let it start only once the plan
  // is done), it needs nothing of that kernel, but must not finish before it.
  wait_for_prior();
}

// Calls batch(base, n) for a tile's records [rs, re), kFwdRecords at a time, with a
// barrier between batches (a batch's records stay in shared memory until its end).
template <typename F>
__device__ void for_record_batches(int rs, int re, F&& batch) {
  for (int base = rs; base < re; base += kFwdRecords) {
    if (base != rs) __syncthreads();
    batch(base, min(kFwdRecords, re - base));
  }
}

// A tile forward block's tile: its level, image, and tile row and column in the level's grid.
struct TileSpot {
  int level, image, row, col;
};
__device__ inline TileSpot tile_spot(const CellGrid& cg, int levels, int tile) {
  int l = 0;
  while (l + 1 < levels && tile >= cg.base[l + 1]) ++l;
  const int in_level = tile - cg.base[l];
  return {l, in_level / cg.cw[l] / cg.ch[l], in_level / cg.cw[l] % cg.ch[l], in_level % cg.cw[l]};
}

// The last of a batch's n records whose first item (first[], ascending) is at or before item i.
__device__ inline int record_at(const int* first, int n, int i) {
  int j = 0;
#pragma unroll
  for (int step = kFwdRecords / 2; step > 0; step /= 2)
    if (j + step < n && first[j + step] <= i) j += step;
  return j;
}

// ---- roi_align forward by map tiles (float math, 2 x 2 grids) ----
//
// A block owns one tile of the plan (kFwdTile pixels a side, one level and image) and
// 4 * Q channels. It loads the tile and its kFwdHalo-pixel margin below and right once,
// as Q planes of float4 pixels (4 channels a pixel, QuadLoader, columns in skew8 order),
// and a thread computes one bin of the tile's records for all 4 * Q channels: its 16
// taps (offsets and weights, from the separable sampler's row and column taps) are
// derived once, and each tap is one 16-byte shared load a plane (the planes are a
// compile-time stride apart, so the offsets stay in registers). A bin row takes a
// power-of-two run of lanes, so a quarter warp's loads share one window row and, with
// skew8, hit distinct bank groups. Every map pixel is read about (kFwdRows /
// kFwdTile)^2 = 1.4 times a channel, where the RoI group windows read the union of
// overlapping footprints. Samples outside the map read a zero pixel with weight 0
// (torchvision skips them: nothing is added). RoIs the plan does not give the tiles
// (other grids, no image, big bins) go to win4's groups; a bin whose taps leave the
// window after all (float rounding at a tile edge) is computed from global memory.
// H100, PERF.md ra7: 222 us of tile kernel + 12 us of plan (tile_descriptors, group_rois)
// + 3 us of win4, against win4's 263 + 8 us; ra14 0.63 against 0.64 ms; float16 / bfloat16
// 0.23 against 0.29 ms, so the tiles serve every map by default where align_forward_lanes
// does not (tile_forward_quads, lane_forward; benchmarks/results/cuda-roi-align-h100.md).
template <typename T, int Q>
__device__ void tile_bin(const AlignArgs<T, float>& a, const Geometry<float>& g, const AxisTaps& ty,
                         const AxisTaps& tx, int k, int ph, int pw, const float4* win, int c_lo, int nc,
                         const T* plane0, const Strides4& st, T* out) {
  const int bins = a.PH * a.PW;
  T* o_ = out + (int64_t(k) * a.C + c_lo) * bins + ph * a.PW + pw;
  if (ty.out || tx.out) {
    for (int c = 0; c < nc; ++c)
      o_[int64_t(c) * bins] = roi::store_cast<T>(direct_value<T, float>(g, plane0 + int64_t(c) * st.c, st, ph, pw));
    return;
  }
  const int ry[4] = {ty.at.x, ty.at.y, ty.at.z, ty.at.w}, cx[4] = {tx.at.x, tx.at.y, tx.at.z, tx.at.w};
  const float wy[4] = {ty.w.x, ty.w.y, ty.w.z, ty.w.w}, wx[4] = {tx.w.x, tx.w.y, tx.w.z, tx.w.w};
  int o[16];
  float w[16];
#pragma unroll
  for (int iy = 0; iy < 2; ++iy)
#pragma unroll
    for (int ix = 0; ix < 2; ++ix)
#pragma unroll
      for (int c = 0; c < 4; ++c) {  // torchvision's order: (y lo, x lo), (lo, hi), (hi, lo), (hi, hi)
        const int t = (iy * 2 + ix) * 4 + c, r = iy * 2 + (c >> 1), q = ix * 2 + (c & 1);
        o[t] = max(ry[r] + cx[q], 0);  // a sample outside the map reads the zero pixel (weight 0)
        w[t] = wy[r] * wx[q];
      }
#pragma unroll
  for (int q = 0; q < Q; ++q)
    if (q * 4 < nc) quad_bin(win + q * kFwdPlane, o, w, o_ + int64_t(q) * 4 * bins, bins, nc - q * 4);
}

template <typename T, int V, int Q>
__global__ void __launch_bounds__(kThreads, Q > 2 ? 2 : 3)
    align_forward_tiles(const __grid_constant__ AlignArgs<T, float> a, const __grid_constant__ FwdTilePlan p, T* out) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ Geometry<float> geo[kFwdRecords];
  __shared__ int2 rec[kFwdRecords];
  __shared__ int first[kFwdRecords], lanes_log2[kFwdRecords], sums[32], total;
  float4* win = reinterpret_cast<float4*>(smem);
  const int tile = blockIdx.x, rs = p.tile_start[tile], re = p.tile_start[tile + 1];
  if (rs >= re) return;
  const TileSpot spot = tile_spot(p.tiles, a.levels, tile);
  const int l = spot.level, b = spot.image;
  const int r0 = spot.row * kFwdTile, c0 = spot.col * kFwdTile;  // the plan's cells are kFwdTile square for this kernel
  const int rows = min(kFwdRows, a.H[l] - r0), cols = min((kFwdRows + V - 1) / V * V, a.W[l] - c0);
  const int c_lo = blockIdx.y * 4 * Q, nc = min(a.C - c_lo, 4 * Q), nq = (nc + 3) / 4;
  const Strides4 st = a.strides[l];
  const T* plane0 = a.maps[l] + b * st.n + int64_t(c_lo) * st.c;
  for_window_vectors<2>(nq, rows, (cols + V - 1) / V,
                        QuadLoader<T, V, Cols::Skew8>{plane0, st, win + 1, r0, c0, kFwdPitch, kFwdPlane, nc, a.W[l]});
  if (int(threadIdx.x) < nq) win[threadIdx.x * kFwdPlane] = make_float4(0.f, 0.f, 0.f, 0.f);  // the zero pixel
  for_record_batches(rs, re, [&](int base, int n) {
    int items = 0;
    if (int(threadIdx.x) < n) {
      // A bin row takes 2^lg lanes (the next power of two), rows whole and a record whole
      // quarter warps: a quarter warp's 16-byte loads then share one window row.
      const int2 r = p.records[base + threadIdx.x];
      const int npw = (r.y >> 24 & 255) - (r.y >> 16 & 255), lg = 32 - __clz(npw - 1);
      rec[threadIdx.x] = r;
      geo[threadIdx.x] = roi_geometry<T, float, false>(a, r.x);
      lanes_log2[threadIdx.x] = lg;
      items = (((r.y >> 8 & 255) - (r.y & 255)) << lg) + 7 & ~7;
    }
    const int at = block_exclusive_scan(items, sums, &total);  // its barriers also close the window's stores
    if (int(threadIdx.x) < n) first[threadIdx.x] = at;
    const int m = total;
    __syncthreads();
    for (int i = threadIdx.x; i < m; i += blockDim.x) {
      const int j = record_at(first, n, i);
      const int ranges = rec[j].y, ph0 = ranges & 255, nph = (ranges >> 8 & 255) - ph0;
      const int pw0 = ranges >> 16 & 255, npw = (ranges >> 24 & 255) - pw0;
      const int local = i - first[j], lg = lanes_log2[j], ph = ph0 + (local >> lg), pw = pw0 + (local & ((1 << lg) - 1));
      if (ph - ph0 >= nph || pw - pw0 >= npw) continue;  // padding lanes
      const Geometry<float>& g = geo[j];
      const AxisTaps ty = axis_taps([&](int i_, int s_) { return g.template y_at<2>(i_, s_); }, ph, g.H, r0, rows,
                                    [](int r) { return 1 + r * kFwdPitch; });
      const AxisTaps tx = axis_taps([&](int i_, int s_) { return g.template x_at<2>(i_, s_); }, pw, g.W, c0, cols,
                                    [](int c) { return skew8(c); });
      tile_bin<T, Q>(a, g, ty, tx, rec[j].x, ph, pw, win, c_lo, nc, plane0, st, out);
    }
  });
}

// ---- roi_align forward by map tiles, lanes on channel quads (sm90-class shared memory) ----
//
// align_forward_tiles gives a thread one bin and 8 channels: its 16 taps' sampler
// arithmetic (~300 instructions) feeds only those 8 channels, and a quarter warp's 8 lanes
// read 8 bins of one window row, which share 16-byte bank groups whenever bins lie a
// multiple of 8 columns apart (~1.8 wavefronts a quarter warp where 1 is the floor).
// Here a block takes a 32 x 16 tile (the plan's cells) and 32 channels, as 8 quad planes
// an odd number of float4s apart, and a quarter warp takes one bin: lane q reads plane
// q, so the 8 lanes' loads of a tap are one pixel of 8 planes, in 8 different bank groups
// (one wavefront), and a tap's offset and weight serve 32 channels. The taps come from
// per-RoI axis tables that tile_descriptors wrote (LaneTables: no sampler arithmetic here).
// A warp takes 32 bins in 8 rounds of 4 (bin 8s + round for quarter warp s), holding 4
// channels of each; a 3-step shuffle transpose then leaves lane i with bin i's 32
// channels, which it stores: a store instruction writes 32 neighbouring bins of a channel.
constexpr int kLaneTileRows = 16;                          // the plan's cells: kFwdTile columns x 16 rows
constexpr int kLaneRows = kLaneTileRows + kFwdHalo;        // window rows a bin may touch
constexpr int kLaneCols = kFwdTile + kFwdHalo;             // window columns (no vector padding)
constexpr int kLaneQuads = 8;                              // 32 channels a block
constexpr int kLanePlane = 1 + kLaneRows * kLaneCols;      // a plane: the zero pixel, then the window
constexpr int kLaneSmem = kLaneQuads * kLanePlane * int(sizeof(float4));
static_assert(kLanePlane % 2 == 1, "planes an odd number of float4s apart: 8 planes' pixel in 8 bank groups");
static_assert(kLaneCols > 32 && kLaneCols <= 40, "swz4 keeps window columns 32.. in place, the rest within 0..31");
constexpr int kLaneNone = -(1 << 28);  // byte offset of no sample: any sum with it is below the plane

// 16 bytes of shared memory at a shared-space address. No "memory" clobber: the window
// it reads is written only before the block's first barrier, and a volatile asm stays on
// its side of __syncthreads.
__device__ inline float4 lds_float4(int at) {
  float4 v;
  asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(at));
  return v;
}

template <typename T, int V>
__global__ void __launch_bounds__(kThreads, 2)
    align_forward_lanes(const __grid_constant__ AlignArgs<T, float> a, const __grid_constant__ FwdTilePlan p,
                        const __grid_constant__ LaneTables lt, T* out) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ int2 rec[kFwdRecords];
  __shared__ int first[kFwdRecords], sums[32], total;
  float4* win = reinterpret_cast<float4*>(smem);
  const int tile = blockIdx.x;
  const TileSpot spot = tile_spot(p.tiles, a.levels, tile);
  const int l = spot.level, b = spot.image;
  const int H = a.H[l], W = a.W[l], r0 = spot.row * kLaneTileRows, c0 = spot.col * kFwdTile;
  const int rows = min(kLaneRows, H - r0), cols = min(kLaneCols, W - c0);
  const int c_lo = blockIdx.y * 4 * kLaneQuads, nc = min(a.C - c_lo, 4 * kLaneQuads), nq = (nc + 3) / 4;
  const Strides4 st = a.strides[l];
  const T* plane0 = a.maps[l] + b * st.n + int64_t(c_lo) * st.c;
  for_window_vectors<2>(nq, rows, (cols + V - 1) / V,
                        QuadLoader<T, V, Cols::Swz4Clipped>{plane0, st, win + 1, r0, c0, kLaneCols, kLanePlane, nc, W});
  if (int(threadIdx.x) < kLaneQuads) win[threadIdx.x * kLanePlane] = make_float4(0.f, 0.f, 0.f, 0.f);  // zero pixels
  // Launched early (launch_early), the window above loads while the plan is still being
  // made; its records are read only once the plan is done. A tile with none loads its
  // window for nothing (ra7: ~1 in 5), which costs less than the wait it hides.
  wait_for_prior();
  let_next_start();
  const int rs = p.tile_start[tile], re = p.tile_start[tile + 1];
  if (rs >= re) return;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32, bins = a.PH * a.PW;
  const int q = lane & 7;  // the lane's plane; its quarter warp (lane / 8) takes one bin a round
  // plane q's zero pixel as a shared-space address: a tap is one 32-bit register, no base to add
  const int pbase = int(__cvta_generic_to_shared(smem)) + q * kLanePlane * int(sizeof(float4));
  for_record_batches(rs, re, [&](int base, int n) {
    int items = 0;
    if (int(threadIdx.x) < n) {
      const int2 r = p.records[base + threadIdx.x];
      rec[threadIdx.x] = r;
      items = ((r.y >> 8 & 255) - (r.y & 255)) * ((r.y >> 24 & 255) - (r.y >> 16 & 255));
    }
    const int at = block_exclusive_scan(items, sums, &total);  // its barriers also close the window's stores
    if (int(threadIdx.x) < n) first[threadIdx.x] = at;
    const int m = total;
    __syncthreads();
    for (int g0 = warp * 32; g0 < m; g0 += warps * 32) {
      // ---- this lane's bin (item g0 + lane): its taps as byte offsets in a plane and weights
      const int i = g0 + lane, j = record_at(first, n, i);
      const int2 r = rec[j];
      const int ph0 = r.y & 255, pw0 = r.y >> 16 & 255, npw = max((r.y >> 24 & 255) - pw0, 1);
      const int local = i < m ? i - first[j] : 0, ph = ph0 + local / npw, pw = pw0 + local % npw;
      T* o = out + (int64_t(r.x) * a.C + c_lo) * bins + ph * a.PW + pw;
      bool emit = i < m;
      int ro[4], co[4];  // row offsets (zero pixel included) and column offsets, bytes; kLaneNone: no sample
      float wy[4], wx[4];
      {
        const int64_t yi = int64_t(r.x) * a.PH + ph, xi = int64_t(r.x) * a.PW + pw;
        const int4 ry = emit ? lt.y[yi * 2] : make_int4(0, 0, 0, 0), cx = emit ? lt.x[xi * 2] : make_int4(0, 0, 0, 0);
        const int4 wyb = emit ? lt.y[yi * 2 + 1] : make_int4(0, 0, 0, 0);
        const int4 wxb = emit ? lt.x[xi * 2 + 1] : make_int4(0, 0, 0, 0);
        const int rv[4] = {ry.x, ry.y, ry.z, ry.w}, cv[4] = {cx.x, cx.y, cx.z, cx.w};
        const int wyv[4] = {wyb.x, wyb.y, wyb.z, wyb.w}, wxv[4] = {wxb.x, wxb.y, wxb.z, wxb.w};
        bool inside = true;  // every tap in the window? (else float rounding at a tile edge)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          inside = inside && (rv[e] == kFwdInvalid || (rv[e] >= r0 && rv[e] < r0 + rows)) &&
                   (cv[e] == kFwdInvalid || (cv[e] >= c0 && cv[e] < c0 + cols));
          ro[e] = rv[e] == kFwdInvalid ? kLaneNone : (1 + (rv[e] - r0) * kLaneCols) * int(sizeof(float4));
          co[e] = cv[e] == kFwdInvalid ? kLaneNone : swz4(cv[e] - c0) * int(sizeof(float4));
          wy[e] = __int_as_float(wyv[e]);
          wx[e] = __int_as_float(wxv[e]);
        }
        if (emit && !inside) {  // from global memory, this lane alone
          const Geometry<float> g = roi_geometry<T, float, false>(a, r.x);
          for (int c = 0; c < nc; ++c)
            o[int64_t(c) * bins] = roi::store_cast<T>(direct_value<T, float>(g, plane0 + int64_t(c) * st.c, st, ph, pw));
          emit = false;
        }
        if (!emit) {  // the zero pixel, weight 0
#pragma unroll
          for (int e = 0; e < 4; ++e) ro[e] = co[e] = kLaneNone, wy[e] = wx[e] = 0.f;
        }
      }
      // ---- 8 rounds: quarter warp s samples bin 8s + round (its lane's taps, by shuffles) for plane q
      float acc[8][4];
#pragma unroll
      for (int it = 0; it < 8; ++it) {
        const int src = (lane & ~7) + it;
        int rb[4], cb[4];
        float ay[4], ax[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          rb[e] = __shfl_sync(0xffffffffu, ro[e], src) + pbase;
          cb[e] = __shfl_sync(0xffffffffu, co[e], src);
          ay[e] = __shfl_sync(0xffffffffu, wy[e], src);
          ax[e] = __shfl_sync(0xffffffffu, wx[e], src);
        }
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[it][c] = 0.f;
#pragma unroll
        for (int t = 0; t < 16; ++t) {  // torchvision's order: samples (y, x), corners (lo, lo), (lo, hi), (hi, lo), (hi, hi)
          const int ry_ = (t >> 3) * 2 + (t >> 1 & 1), cx_ = (t >> 2 & 1) * 2 + (t & 1);
          // a sample outside the map reads the plane's zero pixel (at pbase), weight 0
          const float4 v = lds_float4(max(rb[ry_] + cb[cx_], pbase));
          const float w = ay[ry_] * ax[cx_];
          acc[it][0] = fmaf(w, v.x, acc[it][0]);
          acc[it][1] = fmaf(w, v.y, acc[it][1]);
          acc[it][2] = fmaf(w, v.z, acc[it][2]);
          acc[it][3] = fmaf(w, v.w, acc[it][3]);
        }
      }
      // ---- transpose: swap the lane's plane bits with the round bits, 3 butterfly steps
#pragma unroll
      for (int k = 0; k < 3; ++k) {
        const bool hi = q >> k & 1;
#pragma unroll
        for (int it = 0; it < 8; ++it) {
          if (it >> k & 1) continue;
#pragma unroll
          for (int c = 0; c < 4; ++c) {
            const float send = hi ? acc[it][c] : acc[it | 1 << k][c];
            const float recv = __shfl_xor_sync(0xffffffffu, send, 1 << k);
            if (hi)
              acc[it][c] = recv;
            else
              acc[it | 1 << k][c] = recv;
          }
        }
      }
      // now acc[y][c] is channel 4y + c of this lane's own bin
      if (emit && nc == 4 * kLaneQuads) {
#pragma unroll
        for (int y = 0; y < 8; ++y)
#pragma unroll
          for (int c = 0; c < 4; ++c) o[int64_t(y * 4 + c) * bins] = roi::store_cast<T>(acc[y][c]);
      } else if (emit) {
#pragma unroll
        for (int y = 0; y < 8; ++y)
#pragma unroll
          for (int c = 0; c < 4; ++c)
            if (y * 4 + c < nc) o[int64_t(y * 4 + c) * bins] = roi::store_cast<T>(acc[y][c]);
      }
    }
  });
}

// ---- roi_align backward by map tiles: the deterministic mode ----
//
// A block owns a 32 x 32 tile of one level's map in one image and CH channels, and
// writes every gradient value of it once: no zeroed buffer, no atomics, no layout change.
// It walks the RoIs whose footprint meets the tile in increasing RoI order (each block
// filters the precomputed footprints), RB at a time: the RoIs' axis samples and grad
// values go to shared memory, then for each tile row and column the weight of every bin
// row / column (the sum of its samples' corner weights on that pixel row / column, which
// is what the separable sampler gives; a pixel's weight for bin (ph, pw) is their product).
// A thread owns two pixels of a column and adds, for each bin meeting them, weight x grad
// into CH registers. Every sum runs in a fixed order, so results repeat bit for bit with
// plain float sums. It serves torch.use_deterministic_algorithms: on ra7 (H100) 0.72 ms
// against 1.26 for the fixed-point atomics, but the float atomics take 0.54 (per batch of
// RoIs a block waits on a round of loads, its weight tables and three barriers), so the
// default stays atomic.
// torchvision adds grad x weight per sample corner: with a non-finite grad a corner of
// weight 0 gives NaN, which the flags below keep (bit 0: some corner, bit 1: a zero one).
constexpr int kTileSide = 32;
constexpr int kTileThreads = 512;  // 16 warps: warp w owns rows w and w + 16, lanes the columns
constexpr int kTileRois = 16;      // RoIs a batch at most (fewer where their grad values would not fit)
constexpr int kTileLoads = 16;     // grad values a thread loads a batch at most, all in flight
constexpr int kTileScan = 4;       // footprints a thread checks at once
constexpr int kTileSmemMax = kTune.smem_per_block_optin < 100 * 1024 ? kTune.smem_per_block_optin : 100 * 1024;

// Tiles of every level: level l's tiles are [first[l], first[l + 1]), image-major.
struct TileGrid {
  int first[kMaxLevels + 1];
  int ty[kMaxLevels], tx[kMaxLevels];
};

// A RoI's footprint as the tiles it may touch: x = level * batch + image (-1: the RoI
// adds nothing), y / z = first | last << 16 tile row / column (a superset). Fixed grids
// only (sampling_ratio > 0): the samples run monotonically from the first to the last,
// so those two bound the footprint.
template <typename T, typename A>
__global__ void roi_boxes(const __grid_constant__ AlignArgs<T, A> a, int4* boxes) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= a.K) return;
  const Geometry<A> g = roi_geometry<T, A, false>(a, k);
  int4 r = make_int4(-1, 0, 0, 0);
  if (g.b >= 0 && g.H > 0 && g.W > 0) {
    const A y0 = g.y(0, 0), y1 = g.y(a.PH - 1, g.gh - 1), x0 = g.x(0, 0), x1 = g.x(a.PW - 1, g.gw - 1);
    const A ylo = y0 < y1 ? y0 : y1, yhi = y0 < y1 ? y1 : y0, xlo = x0 < x1 ? x0 : x1, xhi = x0 < x1 ? x1 : x0;
    // NaN fails every test; coordinates are clamped before the integer conversion
    if (ylo <= A(g.H) && yhi >= A(-1) && xlo <= A(g.W) && xhi >= A(-1)) {
      const int r0 = min(static_cast<int>(fmin(fmax(ylo, A(0)), A(g.H))), g.H - 1);
      const int r1 = min(static_cast<int>(fmin(fmax(yhi, A(0)), A(g.H))) + 1, g.H - 1);
      const int c0 = min(static_cast<int>(fmin(fmax(xlo, A(0)), A(g.W))), g.W - 1);
      const int c1 = min(static_cast<int>(fmin(fmax(xhi, A(0)), A(g.W))) + 1, g.W - 1);
      r.x = g.level * a.batch + g.b;
      r.y = r0 / kTileSide | (r1 / kTileSide) << 16;
      r.z = c0 / kTileSide | (c1 / kTileSide) << 16;
    }
  }
  boxes[k] = r;
}

// Shared memory of a tile block, carved from one buffer. carve(nullptr, ...) on the host
// gives the size (`bytes`); the kernel carves its buffer the same way.
template <typename A>
struct TileSmem {
  int* list;                  // [kTileThreads + kTileRois] RoIs met, not yet summed
  AxisSample<A>* ys;          // [RB][PH * G]
  AxisSample<A>* xs;          // [RB][PW * G]
  A* wy;                      // [RB][PH][32]: bin row ph's weight on tile row r
  A* wx;                      // [RB][PW][32]
  unsigned char* fy;          // [RB][PH][32] flags
  unsigned char* fx;          // [RB][PW][32]
  short2* ry;                 // [RB][32]: first and last bin row on tile row r (x > y: none)
  short2* rx;                 // [RB][32]
  A* grad;                    // [RB][bins][pitch]
  int pitch;                  // grad values a bin: CH and 16 bytes, so neighbouring bins use other bank groups
  int bytes;

  // G: samples a bin side (the fixed sampling grid); RB: RoIs a batch.
  __host__ __device__ static TileSmem carve(unsigned char* base, int PH, int PW, int G, int CH, int RB) {
    constexpr int S = kTileSide;
    TileSmem s{};
    s.pitch = CH + 16 / int(sizeof(A));
    std::size_t at = 0;
    auto take = [&](std::size_t size) {  // 16-byte aligned pieces
      unsigned char* p = base ? base + at : nullptr;
      at += (size + 15) & ~std::size_t(15);
      return p;
    };
    s.list = reinterpret_cast<int*>(take((kTileThreads + kTileRois) * sizeof(int)));
    s.ys = reinterpret_cast<AxisSample<A>*>(take(RB * (PH + PW) * G * sizeof(AxisSample<A>)));
    s.xs = s.ys ? s.ys + RB * PH * G : nullptr;
    s.wy = reinterpret_cast<A*>(take(RB * (PH + PW) * S * sizeof(A)));
    s.wx = s.wy ? s.wy + RB * PH * S : nullptr;
    s.fy = take(RB * (PH + PW) * S);
    s.fx = s.fy ? s.fy + RB * PH * S : nullptr;
    s.ry = reinterpret_cast<short2*>(take(RB * 2 * S * sizeof(short2)));
    s.rx = s.ry ? s.ry + RB * S : nullptr;
    s.grad = reinterpret_cast<A*>(take(RB * PH * PW * s.pitch * sizeof(A)));
    s.bytes = static_cast<int>(at);
    return s;
  }
};

// CH values from 16-byte aligned shared memory, 16 bytes a load.
template <typename A, int CH>
__device__ inline void load_run(const A* p, A (&v)[CH]) {
  static_assert(CH * sizeof(A) % 16 == 0, "whole 16-byte runs");
#pragma unroll
  for (int q = 0; q < int(CH * sizeof(A) / 16); ++q) {
    const uint4 u = reinterpret_cast<const uint4*>(p)[q];
    memcpy(&v[q * 16 / sizeof(A)], &u, 16);
  }
}

// One element global -> shared memory, asynchronously (cp.async; 4 or 8 bytes).
template <typename A>
__device__ inline void cp_async_element(A* smem, const A* gmem) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2;\n" ::"r"(s), "l"(gmem), "n"(int(sizeof(A))));
}

// float / double grads copy to shared memory asynchronously: two blocks an SM (64
// registers). 16-bit grads convert in registers (kTileLoads in flight): one block an SM
// (128 registers), as two (8 loads) spilled and ran 16% slower.
template <typename T, typename A, int CH>
__global__ void __launch_bounds__(kTileThreads, std::is_same_v<T, A> ? 2 : 1)
    align_backward_tiles(const __grid_constant__ AlignArgs<T, A> a, const int4* boxes,
                         const __grid_constant__ TileGrid tg, int RB, const T* grad, Strides4 gs, T* out) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ int warp_hits[kTileThreads / 32];
  constexpr int S = kTileSide, NT = kTileThreads;
  const int PH = a.PH, PW = a.PW, bins = PH * PW, gh = a.sampling_ratio, gw = a.sampling_ratio;
  const int ny = PH * gh, nx = PW * gw;
  const TileSmem<A> s = TileSmem<A>::carve(smem, PH, PW, gh, CH, RB);
  // this block's tile
  int l = 0;
  while (l + 1 < a.levels && int(blockIdx.x) >= tg.first[l + 1]) ++l;
  const int t = blockIdx.x - tg.first[l], per_image = tg.ty[l] * tg.tx[l];
  const int b = t / per_image, ty = (t - b * per_image) / tg.tx[l], tx = t - b * per_image - ty * tg.tx[l];
  const int H = a.H[l], W = a.W[l], R0 = ty * S, C0 = tx * S, key = l * a.batch + b;
  const int c0 = blockIdx.y * CH, nc = min(CH, a.C - c0);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const bool dense = gs.w == 1 && gs.h == PW;  // a RoI's bins of a channel are contiguous
  const A inv_count = A(1) / static_cast<A>(gh * gw);
  A acc[2][CH];
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int c = 0; c < CH; ++c) acc[h][c] = A(0);

  // The RoIs list[first, first + nb): their grad values, axis samples and per-row /
  // per-column bin weights into shared memory, then their sums into acc.
  auto batch = [&](int first, int nb) {
    const int cb = CH * bins, total = nb * cb;
    // element i = threadIdx.x + u * NT of [nb][CH][bins], stepped without divisions
    const int srb = NT / cb, sc = (NT - srb * cb) / bins, sbin = NT - srb * cb - sc * bins;
    const int rb0 = threadIdx.x / cb, c00 = (threadIdx.x - rb0 * cb) / bins, bin0 = threadIdx.x - rb0 * cb - c00 * bins;
    auto step = [&](int& rb, int& c, int& bin) {
      bin += sbin;
      c += sc;
      rb += srb;
      if (bin >= bins) bin -= bins, ++c;
      if (c >= CH) c -= CH, ++rb;
    };
    auto samples = [&] {
      for (int i = threadIdx.x; i < nb * (ny + nx); i += NT) {
        const int rb = i / (ny + nx), e = i - rb * (ny + nx);
        const Geometry<A> g = roi_geometry<T, A, false>(a, s.list[first + rb]);
        if (e < ny)
          s.ys[rb * ny + e] = roi::axis_sample(g.y(e / gh, e % gh), g.H);
        else
          s.xs[rb * nx + e - ny] = roi::axis_sample(g.x((e - ny) / gw, (e - ny) % gw), g.W);
      }
    };
    auto source = [&](int rb, int c, int bin) {
      const int64_t off = dense ? bin : (bin / PW) * gs.h + (bin % PW) * gs.w;
      return grad + int64_t(s.list[first + rb]) * gs.n + (c0 + c) * gs.c + off;
    };
    bool finite = true;
    if constexpr (std::is_same_v<T, A>) {
      // straight into shared memory with cp.async: no registers held, two blocks an SM
      int rb = rb0, c = c00, bin = bin0;
      for (int i = threadIdx.x; i < total; i += NT, step(rb, c, bin)) {
        A* dst = s.grad + (rb * bins + bin) * s.pitch + c;
        if (c < nc)
          cp_async_element(dst, source(rb, c, bin));
        else
          *dst = A(0);
      }
      asm volatile("cp.async.commit_group;\n" ::);
      samples();  // while the copies fly
      asm volatile("cp.async.wait_group 0;\n" ::: "memory");
      rb = rb0, c = c00, bin = bin0;
      for (int i = threadIdx.x; i < total; i += NT, step(rb, c, bin))
        finite = finite && isfinite(s.grad[(rb * bins + bin) * s.pitch + c]);
    } else {  // 16-bit grads: converted on the way, kTileLoads in flight
      A v[kTileLoads];
      int rb = rb0, c = c00, bin = bin0;
#pragma unroll
      for (int u = 0; u < kTileLoads; ++u) {
        v[u] = A(0);
        if (threadIdx.x + u * NT < total && c < nc) v[u] = roi::load(source(rb, c, bin));
        step(rb, c, bin);
      }
      samples();  // while the loads fly
      rb = rb0, c = c00, bin = bin0;
#pragma unroll
      for (int u = 0; u < kTileLoads; ++u) {
        if (threadIdx.x + u * NT < total) {
          s.grad[(rb * bins + bin) * s.pitch + c] = v[u];
          finite = finite && isfinite(v[u]);
        }
        step(rb, c, bin);
      }
    }
    const bool careful = __syncthreads_or(!finite);
    // each tile row's weight of each bin row, each tile column's of each bin column
    for (int i = threadIdx.x; i < nb * 2 * S; i += NT) {
      const int rb = i / (2 * S), e = i - rb * 2 * S, row = e < S;
      const int P = row ? PH : PW, G = row ? gh : gw, pos = row ? R0 + e : C0 + e - S, u = row ? e : e - S;
      const AxisSample<A>* smp = row ? s.ys + rb * ny : s.xs + rb * nx;
      A* wt = (row ? s.wy + rb * PH * S : s.wx + rb * PW * S) + u;
      unsigned char* fl = (row ? s.fy + rb * PH * S : s.fx + rb * PW * S) + u;
      int lo = 1, hi = 0;
      for (int p = 0; p < P; ++p) {
        A w = A(0);
        unsigned f = 0;
        for (int q = 0; q < G; ++q) {
          const AxisSample<A> x = smp[p * G + q];
          if (x.lo < 0) continue;
          if (x.lo == pos) w += x.h, f |= 1u | (x.h == A(0) ? 2u : 0u);
          if (x.hi == pos) w += x.l, f |= 1u | (x.l == A(0) ? 2u : 0u);
        }
        wt[p * S] = w;
        fl[p * S] = static_cast<unsigned char>(f);
        if (f) {
          if (lo > hi) lo = p;
          hi = p;
        }
      }
      (row ? s.ry : s.rx)[rb * S + u] = make_short2(short(lo), short(hi));
    }
    __syncthreads();
    for (int rb = 0; rb < nb; ++rb) {
      const short2 cx = s.rx[rb * S + lane];
      const A* wxr = s.wx + rb * PW * S + lane;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = warp + 16 * h;
        const short2 cy = s.ry[rb * S + r];
        for (int ph = cy.x; ph <= cy.y; ++ph) {
          const A w1 = s.wy[(rb * PH + ph) * S + r] * inv_count;
          const A* gr = s.grad + (rb * bins + ph * PW) * s.pitch;
          if (!careful) {  // a pair without taps has weight 0 and adds 0
            for (int pw = cx.x; pw <= cx.y; ++pw) {
              const A w = w1 * wxr[pw * S];
              constexpr int R = 16 / int(sizeof(A));  // channels a 16-byte load
#pragma unroll
              for (int c = 0; c < CH; c += R) {  // a load's FMAs before the next load: fewer live registers
                A g[R];
                load_run<A, R>(gr + pw * s.pitch + c, g);
#pragma unroll
                for (int e = 0; e < R; ++e) acc[h][c + e] += w * g[e];
              }
            }
          } else {
            const unsigned f1 = s.fy[(rb * PH + ph) * S + r];
            if (!f1) continue;
            for (int pw = cx.x; pw <= cx.y; ++pw) {
              const unsigned f2 = s.fx[(rb * PW + pw) * S + lane];
              if (!f2) continue;
              const A w = w1 * wxr[pw * S];
              const bool zero_tap = ((f1 | f2) & 2u) != 0;
#pragma unroll
              for (int c = 0; c < CH; ++c) {
                const A g = gr[pw * s.pitch + c];
                acc[h][c] += zero_tap && !isfinite(g) ? A(NAN) : w * g;
              }
            }
          }
        }
      }
    }
    __syncthreads();
  };

  int n = 0;  // RoIs listed and not yet summed (the same in every thread)
  for (int base = 0; base < a.K; base += kTileScan * NT) {
    unsigned hits = 0;  // which of the thread's kTileScan footprints meet the tile: all loads at once
    int4 bx[kTileScan];
#pragma unroll
    for (int j = 0; j < kTileScan; ++j) {
      const int k = base + j * NT + threadIdx.x;
      bx[j] = k < a.K ? boxes[k] : make_int4(-1, 0, 0, 0);
    }
#pragma unroll
    for (int j = 0; j < kTileScan; ++j) {
      const int4 r = bx[j];
      if (r.x == key && (r.y & 0xffff) <= ty && ty <= (r.y >> 16) && (r.z & 0xffff) <= tx && tx <= (r.z >> 16))
        hits |= 1u << j;
    }
    for (int j = 0; j < kTileScan && base + j * NT < a.K; ++j) {
      const bool hit = (hits >> j) & 1u;
      const unsigned m = __ballot_sync(0xffffffffu, hit);
      if (lane == 0) warp_hits[warp] = __popc(m);
      __syncthreads();
      int before = 0, count = 0;
#pragma unroll
      for (int w = 0; w < NT / 32; ++w) {
        const int c = warp_hits[w];
        before += w < warp ? c : 0;
        count += c;
      }
      if (hit) s.list[n + before + __popc(m & ((1u << lane) - 1u))] = base + j * NT + threadIdx.x;
      n += count;
      __syncthreads();
      int done = 0;
      for (; n - done >= RB; done += RB) batch(done, RB);
      if (done > 0) {  // the rest (fewer than RB) to the front
        const int rest = n - done;
        const int k = int(threadIdx.x) < rest ? s.list[done + threadIdx.x] : 0;
        __syncthreads();
        if (int(threadIdx.x) < rest) s.list[threadIdx.x] = k;
        __syncthreads();
        n = rest;
      }
    }
  }
  if (n > 0) batch(0, n);
  const int x = C0 + lane;
  if (x >= W) return;
  T* o = out + a.base[l] + ((int64_t(b) * a.C + c0) * H) * W + x;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int y = R0 + warp + 16 * h;
    if (y >= H) continue;
#pragma unroll
    for (int c = 0; c < CH; ++c)
      if (c < nc) o[(int64_t(c) * H + y) * W] = roi::store_cast<T>(acc[h][c]);
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
  std::size_t static_smem = 0;
  if (kernel_static_smem(reinterpret_cast<const void*>(kernel), static_smem) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  const double per_sm = 228.0 * 1024;
  const int percent = static_cast<int>(std::min(100.0, 8.0 * (static_smem + dynamic_smem + 1024) / per_sm * 100 + 1));
  if (set_kernel_attribute(reinterpret_cast<const void*>(kernel), cudaFuncAttributePreferredSharedMemoryCarveout,
                           percent) != cudaSuccess)
    cudaGetLastError();  // only a hint
}

// roi_align's NCHW forward paths. By default: few bins (<= kDirectBins) take the per-RoI
// kernel, others the tile forward with win4 for the RoIs it leaves (H100, ra7: float32 0.250
// against 0.277 ms for the RoI groups alone, ra14 0.635 against 0.641, float16 / bfloat16
// 0.231 against 0.294, since the kernels read their plans as __grid_constant__ parameters).
// TVOPS_ROI_FORWARD=direct / tiles / tiles4 (4 quads a block) / lanes / groups forces one, for any
// count; read each call, so that one process can compare them.
enum class ForwardPath { Default, Direct, Tiles, Tiles4, Lanes, Groups };
ForwardPath forward_override() {
  const char* v = std::getenv("TVOPS_ROI_FORWARD");
  if (!v || !*v) return ForwardPath::Default;
  if (std::strcmp(v, "direct") == 0) return ForwardPath::Direct;
  if (std::strcmp(v, "tiles") == 0) return ForwardPath::Tiles;
  if (std::strcmp(v, "tiles4") == 0) return ForwardPath::Tiles4;
  if (std::strcmp(v, "lanes") == 0) return ForwardPath::Lanes;
  return ForwardPath::Groups;
}

// Up to this many output bins (RoIs x pooled height x pooled width) the forward skips the
// windows: their plan (two launches and a workspace) and the tile kernel's fixed cost
// exceed the work. One block per (RoI, channel chunk) reads the map straight instead (H100,
// 256 channels, 7 x 7 on a 200 x 272 map: 47 us a call against 65 through the tiles at
// 128 RoIs; Mask R-CNN's mask head, 100 RoIs at 14 x 14, takes 59 us of tile kernel against
// 130 per RoI, so the bound counts bins, not RoIs). Maps so small that the tile forward has
// fewer blocks than the GPU has SMs (an FPN's coarsest level) leave SMs idle however many
// RoIs come: those go per RoI too (256 RoIs on 25 x 34: 79 against 104 us; on 50 x 68, 192
// tile blocks, the tiles stay ahead, 70 against 77).
constexpr int64_t kDirectBins = 128 * 7 * 7;
bool direct_forward(ForwardPath path, int64_t K, int64_t PH, int64_t PW, bool few_tiles) {
  return path == ForwardPath::Direct || (path == ForwardPath::Default && (K * PH * PW <= kDirectBins || few_tiles));
}

// align_forward_lanes runs where two of its blocks fit an SM (sm90, sm100, sm103, sm110),
// by default for pooled sizes up to 7 x 7 (H100, PERF.md ra7: 0.236 against 0.245 ms,
// float16 0.192 against 0.229); larger ones keep align_forward_tiles (ra14: 0.670 against
// 0.623: its bins are smaller, so the per-bin work of the shuffles and the transpose
// weighs more).
constexpr bool kLaneForwardFits = 2 * (kLaneSmem + 2 * kKiB) <= kTune.smem_per_sm;
constexpr int64_t kLaneMaxBins = 7 * 7;
// Cells of `rows` x kFwdTile pixels over every level and image of `maps`.
int64_t tile_count(const std::vector<Tensor>& maps, int rows) {
  int64_t tiles = 0;
  for (const Tensor& m : maps)
    tiles += std::max<int64_t>(m.size(0), 1) * ((m.size(2) + rows - 1) / rows) * ((m.size(3) + kFwdTile - 1) / kFwdTile);
  return tiles;
}
// The lane kernel's 32 x 16 cells, every level and image, within the plan's buckets: past
// that the plan takes the tile kernel's 32 x 32 cells (twice as many images fit).
bool lane_tiles_fit(const std::vector<Tensor>& maps) { return tile_count(maps, kLaneTileRows) + 1 <= kMaxBuckets; }
bool lane_forward(ForwardPath path, const std::vector<Tensor>& maps, int64_t K, int64_t PH, int64_t PW) {
  const bool wanted = path == ForwardPath::Lanes || (path == ForwardPath::Default && PH * PW <= kLaneMaxBins);
  return kLaneForwardFits && wanted && K * (PH + PW) * 2 < int64_t(INT32_MAX) &&  // its tables index in 32 bits
         lane_tiles_fit(maps);
}

// Channel quads a block of the tile forward takes; 0: the RoI group kernels alone.
int tile_forward_quads(ForwardPath path) {
  // 4 planes and the block's static arrays (records, geometry) need ~102 KB: sm86 / sm89 /
  // sm120 blocks take 99
  constexpr bool four_fit = 4 * kFwdPlane * int(sizeof(float4)) + 8 * 1024 <= kTune.smem_per_block_optin;
  if (path == ForwardPath::Default || path == ForwardPath::Tiles) return 2;
  if (path == ForwardPath::Tiles4) return four_fit ? 4 : 2;
  if (path == ForwardPath::Lanes) return 2;  // where align_forward_lanes does not fit
  return 0;
}
static_assert(2 * kFwdPlane * int(sizeof(float4)) + 8 * 1024 <= kTune.smem_per_block_optin,
              "the tile forward's two planes and static arrays fit a block on every target");

// Whether the default tile forward would have fewer blocks than `device` has SMs.
bool few_tile_blocks(const std::vector<Tensor>& maps, int64_t C, bool lanes, int device) {
  const int64_t tiles = maps[0].size(0) == 0 ? 0 : tile_count(maps, lanes ? kLaneTileRows : kFwdTile);  // no image: none
  const int64_t channels = 4 * (lanes ? kLaneQuads : tile_forward_quads(ForwardPath::Default));
  return tiles * ((C + channels - 1) / channels) < sm_count(device);
}

// roi_align uses the channels-last kernels when a block's [32 x bins] outputs fit the
// staging buffer; ps_roi_align reads a different channel per bin, so it stays NCHW.
template <typename A, bool PS>
bool use_channels_last(int64_t PH, int64_t PW) {
  return !PS && kLanes * PH * PW * int64_t(sizeof(A)) <= kStageBytes;
}

// The windowed kernels take roi_align when a RoI's axis tables stay small.
inline int window_gcap(int64_t sr) { return sr > 0 ? int(sr) : 4; }
template <bool PS>
bool use_window(int64_t PH, int64_t PW, int64_t sr, int64_t C) {
  const int64_t g = sr > 0 ? sr : 4;
  return !PS && sr <= 64 && PH * g <= 64 && PW * g <= 64 && (C + kTune.roi_window_channels - 1) / kTune.roi_window_channels <= 65535;
}

// Groups the RoIs for the windowed kernels (one single-block launch, no host sync);
// `ws` keeps the plan's device memory alive. Sets `grid_x`, the most groups there can be.
// With `tiles` (float math, 2 x 2 grids) the plan's cells are the tile forward's tiles and
// it lists their records in `tp` too; `tiles` turns false where the maps have too many.
template <typename T, typename A>
WinPlan plan_groups(const AlignArgs<T, A>& a, Tensor& ws, unsigned& grid_x, int& smem, Device device,
                    const Context& ctx, cudaStream_t stream, int window_bytes = kWinBytes, int reserved_bytes = 0,
                    bool* tiles = nullptr, FwdTilePlan* tp = nullptr, int tile_rows = kFwdTile,
                    LaneTables* lane_tables = nullptr) {
  CellGrid cg{};
  auto cells = [&](int cell, int cell_h) {
    cg.cell = cell;
    cg.cell_h = cell_h;
    int64_t total = 0;
    for (int l = 0; l < a.levels; ++l) {
      cg.ch[l] = std::max(1, (a.H[l] + cell_h - 1) / cell_h);
      cg.cw[l] = std::max(1, (a.W[l] + cell - 1) / cell);
      cg.base[l] = int(total);
      total += int64_t(std::max(a.batch, 1)) * cg.ch[l] * cg.cw[l];
      if (total >= kMaxBuckets) break;
    }
    return total;
  };
  int64_t total = 0;
  if (tiles && *tiles) {
    total = cells(kFwdTile, tile_rows);
    *tiles = total + 1 <= kMaxBuckets;
  }
  if (!tiles || !*tiles)
    for (int cell = kTune.roi_group_cell;; cell *= 2)  // coarser cells for very large maps
      if ((total = cells(cell, cell)) + 1 <= kMaxBuckets) break;
  cg.buckets = int(total + 1);
  WinPlan p{};
  p.gcap = window_gcap(a.sampling_ratio);
  p.chunk = kTune.roi_window_channels;
  p.win_bytes = window_bytes - reserved_bytes;  // what one window may take; the rest holds zero pixels
  // With tiles the groups serve the RoIs the tiles leave: big ones (bins over kFwdMaxBin
  // pixels, footprints over kFwdRanges tiles), which rarely share a window: one a group,
  // so that a block a RoI and chunk works on them in parallel.
  p.group_max = tiles && *tiles ? 1 : kTune.roi_group_max;
  const int ty = a.PH * p.gcap, tx = a.PW * p.gcap;
  while (p.group_max > 1 && table_bytes<A>(p.group_max, ty, tx) > kTableBytes) --p.group_max;
  smem = table_bytes<A>(p.group_max, ty, tx) + window_bytes;
  const int64_t max_groups = std::min<int64_t>(a.K, a.K / p.group_max + cg.buckets);
  const bool tile_plan = tiles && *tiles;
  const int64_t records = tile_plan ? int64_t(a.K) * kFwdRanges * kFwdRanges : 0;
  const int64_t descriptors = tile_plan ? a.K : 0;
  const int64_t lane_entries = tile_plan && lane_tables ? int64_t(a.K) * (a.PH + a.PW) * 2 : 0;  // int4s
  ws = Tensor::empty({4 * descriptors + 4 * lane_entries + 2 * max_groups + 2 * records + a.K + 1 +
                      (tile_plan ? total + 1 : 0)},
                     DType::Int32, device, ctx);
  int4* desc = reinterpret_cast<int4*>(ws.data<int32_t>());  // first: 16-byte aligned
  LaneTables lt{nullptr, nullptr};
  if (lane_entries > 0) {
    lt = {desc + descriptors, desc + descriptors + int64_t(a.K) * a.PH * 2};
    *lane_tables = lt;
  }
  int2* groups = reinterpret_cast<int2*>(desc + descriptors + lane_entries);
  int2* recs = groups + max_groups;
  int* order = reinterpret_cast<int*>(recs + records);
  int* count = order + a.K;
  TileRecordsOut to{nullptr, nullptr, nullptr};
  if (tile_plan) {
    to = {recs, count + 1, desc};
    *tp = FwdTilePlan{recs, to.tile_start, cg};
  }
  p.order = order;
  p.groups = groups;
  p.count = count;
  bool described = false;
  if constexpr (std::is_same_v<A, float>) {
    if (tile_plan) {
      const int64_t threads = a.K + lane_entries / 2;  // descriptors, then lane table entries
      tile_descriptors<T><<<unsigned((threads + 255) / 256), 256, 0, stream>>>(a, cg, desc, lt);
      TVOPS_CUDA_CHECK(cudaGetLastError());
      described = true;
    }
  }
  if (described)  // its counters cleared while the descriptors are written
    launch_early(group_rois<T, A>, dim3(1), dim3(kGroupThreads), 0, stream, a, cg, p.group_max, order, groups, count, to);
  else
    group_rois<T, A><<<1, kGroupThreads, 0, stream>>>(a, cg, p.group_max, order, groups, count, to);
  TVOPS_CUDA_CHECK(cudaGetLastError());
  grid_x = unsigned(max_groups);
  return p;
}

template <typename Kernel>
void prefer_shared(Kernel kernel, int smem) {
  allow_dynamic_smem(kernel, smem);
  if (set_kernel_attribute(reinterpret_cast<const void*>(kernel), cudaFuncAttributePreferredSharedMemoryCarveout,
                           cudaSharedmemCarveoutMaxShared) !=
      cudaSuccess)
    cudaGetLastError();  // only a hint
}

// 16-byte vector loads of a map's rows: unit strides along rows, rows and planes whole vectors.
template <typename T>
bool vector_rows(const T* p, const Strides4& s, int W) {
  constexpr int V = 16 / sizeof(T);
  return s.w == 1 && s.h % V == 0 && s.c % V == 0 && s.n % V == 0 && W % V == 0 &&
         reinterpret_cast<uintptr_t>(p) % 16 == 0;
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
    bool all_cl = true;
    for (const Tensor& m : maps) all_cl = all_cl && roi::is_channels_last(m);
    // Channels-last maps are read in place; others through shared-memory windows of
    // their NCHW planes, or (pooled sizes the windows do not take) a channels-last copy.
    const bool cl_ok = use_channels_last<A, PS>(PH, PW) && (C + kLanes - 1) / kLanes <= 65535;
    const ForwardPath path = forward_override();
    // float math with 2 x 2 grids: the windows are channel-interleaved float4 ones (win4),
    // and the tile forward can run
    const bool win4 = std::is_same_v<A, float> && a.sampling_ratio == 2;
    const bool lane_ok = win4 && !PS && lane_forward(path, maps, rois.size(0), PH, PW);  // the lane tile kernel
    // few bins, or (where the tile forward would run) a map too small to fill the GPU with tiles
    const bool few_tiles = win4 && !PS && path == ForwardPath::Default && rois.size(0) * PH * PW > kDirectBins &&
                           few_tile_blocks(maps, C, lane_ok, maps[0].device().index);
    const bool direct = !all_cl && direct_forward(path, rois.size(0), PH, PW, few_tiles);
    const bool win = !direct && !(cl_ok && all_cl) && use_window<PS>(PH, PW, sr, C) && rois.size(0) > 0;
    const bool cl = cl_ok && !win && !direct;
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
      if (win) {
        // win4: the tile forward, win4 for the RoIs it does not take; else planar windows
        const int tile_quads = tile_forward_quads(path);
        bool tiles = win4 && tile_quads > 0 && PH <= 255 && PW <= 255;
        const bool lanes = tiles && lane_ok;
        FwdTilePlan tp{};
        LaneTables lt{nullptr, nullptr};
        Tensor ws;
        unsigned gx = 0;
        int smem = 0;
        const WinPlan p = win4 ? plan_groups<T, A>(a, ws, gx, smem, maps[0].device(), ctx, stream, kWin4Bytes,
                                                   int(sizeof(float4)), &tiles, &tp,
                                                   lanes ? kLaneTileRows : kFwdTile, lanes ? &lt : nullptr)
                               : plan_groups<T, A>(a, ws, gx, smem, maps[0].device(), ctx, stream);
        bool vec = true;
        for (int l = 0; l < a.levels; ++l) vec = vec && vector_rows<T>(a.maps[l], a.strides[l], a.W[l]);
        // with tiles, win4 takes the RoIs left over (a RoI a group): two blocks an SM (as many
        // as its windows let in) stride over them; most calls leave few or none
        const dim3 grid(tiles ? std::min(gx, 2u * unsigned(sm_count(maps[0].device().index))) : gx,
                        unsigned((C + p.chunk - 1) / p.chunk));
        auto launch = [&](auto kernel, bool early = false) {
          prefer_shared(kernel, smem);
          if (early)
            launch_early(kernel, grid, dim3(kThreads), smem, stream, a, p, out.data<T>());
          else
            kernel<<<grid, kThreads, smem, stream>>>(a, p, out.data<T>());
        };
        constexpr int V = 16 / sizeof(T);
        if constexpr (std::is_same_v<A, float>) {
          if (tiles) {
            auto launch_tiles = [&](auto kernel, int q) {
              const dim3 tgrid(unsigned(tp.tiles.buckets - 1), unsigned((C + 4 * q - 1) / (4 * q)));
              const int bytes = q * kFwdPlane * int(sizeof(float4));
              prefer_shared(kernel, bytes);
              kernel<<<tgrid, kThreads, bytes, stream>>>(a, tp, out.data<T>());
            };
            if (lanes) {
              const dim3 tgrid(unsigned(tp.tiles.buckets - 1), unsigned((C + 4 * kLaneQuads - 1) / (4 * kLaneQuads)));
              auto kernel = vec ? align_forward_lanes<T, V> : align_forward_lanes<T, 1>;
              prefer_shared(kernel, kLaneSmem);
              // its windows load while group_rois runs (H100 ra7: ~6 us of ~235 a call)
              launch_early(kernel, tgrid, dim3(kThreads), kLaneSmem, stream, a, tp, lt, out.data<T>());
            } else if (tile_quads == 2)
              vec ? launch_tiles(align_forward_tiles<T, V, 2>, 2) : launch_tiles(align_forward_tiles<T, 1, 2>, 2);
            else
              vec ? launch_tiles(align_forward_tiles<T, V, 4>, 4) : launch_tiles(align_forward_tiles<T, 1, 4>, 4);
            TVOPS_CUDA_CHECK(cudaGetLastError());
          }
          // after the lanes it may start at their last wave (it takes the RoIs they leave)
          const bool after_lanes = tiles && lanes;
          if (win4) vec ? launch(align_forward_win4<T, V>, after_lanes) : launch(align_forward_win4<T, 1>, after_lanes);
        }
        if (!win4) {
          if (a.sampling_ratio == 2)
            vec ? launch(align_forward_win<T, A, 2, V>) : launch(align_forward_win<T, A, 2, 1>);
          else
            vec ? launch(align_forward_win<T, A, 0, V>) : launch(align_forward_win<T, A, 0, 1>);
        }
        TVOPS_CUDA_CHECK(cudaGetLastError());
        return;
      }
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

// roi_align's backward by map tiles (align_backward_tiles) where it applies: fixed
// sampling grids, pooled sizes and grids whose tables fit, and few enough RoIs that every
// block may scan all of them. `a` holds the levels' sizes, offsets in `all` and scales.
// Writes every value of `all`; false: use the other kernels.
template <typename T, typename A>
bool tile_backward(const AlignArgs<T, A>& a, const Tensor& grad, Tensor& all, const Context& ctx) {
  constexpr int CH = sizeof(A) == 4 ? 16 : 8;
  const int64_t K = a.K, C = a.C, PH = a.PH, PW = a.PW, sr = a.sampling_ratio;
  if (sr < 1 || sr > 8 || PH < 1 || PH > 16 || PW < 1 || PW > 16 || K < 1 || (C + CH - 1) / CH > 65535) return false;
  int rb = 0, smem = 0;
  for (rb = kTileRois; rb >= 1; --rb) {  // the batch's grad values in one round of loads, and in shared memory
    smem = TileSmem<A>::carve(nullptr, int(PH), int(PW), int(sr), CH, rb).bytes;
    // 16-bit grads pass through registers: at most kTileLoads a thread
    if (smem <= kTileSmemMax && (std::is_same_v<T, A> || rb * CH * PH * PW <= kTileLoads * kTileThreads)) break;
  }
  if (rb < 1) return false;
  TileGrid tg{};
  int64_t tiles = 0;
  for (int l = 0; l < a.levels; ++l) {
    tg.first[l] = int(tiles);
    tg.ty[l] = (a.H[l] + kTileSide - 1) / kTileSide;
    tg.tx[l] = (a.W[l] + kTileSide - 1) / kTileSide;
    tiles += int64_t(a.batch) * tg.ty[l] * tg.tx[l];
    if (tiles >= (int64_t(1) << 31) || tg.ty[l] > 65535 || tg.tx[l] > 65535) return false;
  }
  tg.first[a.levels] = int(tiles);
  const int64_t chunks = (C + CH - 1) / CH;
  if (tiles * chunks * K > (int64_t(1) << 26)) return false;  // each block scans every RoI's footprint
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  Tensor ws = Tensor::empty({4 * K}, DType::Int32, grad.device(), ctx);
  int4* boxes = reinterpret_cast<int4*>(ws.data<int32_t>());
  roi_boxes<T, A><<<blocks_for(K, 256), 256, 0, stream>>>(a, boxes);
  TVOPS_CUDA_CHECK(cudaGetLastError());
  auto kernel = align_backward_tiles<T, A, CH>;
  allow_dynamic_smem(kernel, smem);
  const dim3 grid{static_cast<unsigned>(tiles), static_cast<unsigned>(chunks)};
  kernel<<<grid, kTileThreads, smem, stream>>>(a, boxes, tg, rb, grad.data<T>(), roi::strides_of(grad),
                                               all.data<T>());
  TVOPS_CUDA_CHECK(cudaGetLastError());
  return true;
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
    auto a = make_args<T, A>(rois, level_of, N, C, C_out, PH, PW, sr, aligned);
    a.levels = static_cast<int>(shapes.size());
    for (std::size_t l = 0; l < shapes.size(); ++l) {
      check_int_range(op, shapes[l][2], "height");
      check_int_range(op, shapes[l][3], "width");
      a.H[l] = static_cast<int>(shapes[l][2]);
      a.W[l] = static_cast<int>(shapes[l][3]);
      a.base[l] = base[l];
      a.scale[l] = static_cast<A>(scales[l]);
    }
    if constexpr (!PS) {
      // Deterministic sums by map tiles: float sums in a fixed order, no fixed-point pass
      // (ra7 on an H100: 0.72 ms against 1.26; the atomic kernels below take 0.54).
      if (deterministic && tile_backward<T, A>(a, grad, all, ctx)) return;
    }
    constexpr bool same = std::is_same_v<T, A>;
    const bool cl = use_channels_last<A, PS>(PH, PW) && (C + kLanes - 1) / kLanes <= 65535;
    if (cl)  // before the sums' buffers and kernels: their layout change at the end would refuse it
      for (const auto& s : shapes)
        TVOPS_CHECK(roi::layout_fits(s[1], s[2] * s[3]), Value, op, ": the gradient of a ", s[0], "x", s[1], "x",
                    s[2], "x", s[3], " map is too large for the CUDA layout copy");
    // Channels-last sums need a layout change at the end, so they never alias the result.
    roi::GradBuffers<A> buf(total, deterministic, K * PH * PW, same && !cl ? all.data_ptr() : nullptr,
                            device.index, stream);
    if (grad.numel() > 0) {
      for (std::size_t l = 0; l < shapes.size(); ++l) {
        const auto& s = shapes[l];
        a.strides[l] = cl ? roi::channels_last_strides(s[1], s[2], s[3])
                          : Strides4{s[1] * s[2] * s[3], s[2] * s[3], s[3], 1};
      }
      const Strides4 gs = roi::strides_of(grad);
      buf.measure(grad.data<T>(), gs, C_out, PH, PW, grad.numel(), stream);
      if (cl) {
        if constexpr (!PS) {
          // Measured on ra7 (H100): float atomics take 4-channel atomics, merged corners and
          // 64-channel blocks (kernel 409 us, taps 562); the fixed-point sums merge (1.27 ms,
          // taps 1.55); scalar float atomics stay per tap (merging cost 4-7% there).
          const bool vec4 = std::is_same_v<A, float> && !deterministic && C % 4 == 0;
          const bool wide = vec4 && 2 * kLanes * PH * PW * int64_t(sizeof(A)) <= kStageBytes;
          const int ch = wide ? 2 * kLanes : kLanes;
          const dim3 grid(a.K, unsigned((C + ch - 1) / ch));
          const std::size_t smem = ch * PH * PW * sizeof(A);
          auto launch = [&](auto kernel, auto scatter) {
            prefer_l1(kernel, smem);
            kernel<<<grid, kThreads, smem, stream>>>(a, grad.data<T>(), gs, scatter);
          };
          // VEC channels a lane, merged corners, CH channels a block
          auto run = [&](auto d, auto vec, auto merge, auto width) {
            constexpr bool D = decltype(d)::value, MERGE = decltype(merge)::value;
            constexpr int VEC = decltype(vec)::value, CH = decltype(width)::value;
            auto sc = buf.template scatter<D>();
            if (a.sampling_ratio == 2)
              launch(align_backward_cl<T, A, D, 2, VEC, MERGE, CH>, sc);
            else if (a.sampling_ratio == 1)
              launch(align_backward_cl<T, A, D, 1, VEC, MERGE, CH>, sc);
            else
              launch(align_backward_cl<T, A, D, 0, VEC, MERGE, CH>, sc);
          };
          using one = std::integral_constant<int, 1>;
          using four = std::integral_constant<int, 4>;
          using lanes = std::integral_constant<int, kLanes>;
          using two_lanes = std::integral_constant<int, 2 * kLanes>;
          if (deterministic) {
            run(std::true_type{}, one{}, std::true_type{}, lanes{});
          } else if (!vec4) {
            run(std::false_type{}, one{}, std::false_type{}, lanes{});
          } else if constexpr (std::is_same_v<A, float>) {
            wide ? run(std::false_type{}, four{}, std::true_type{}, two_lanes{})
                 : run(std::false_type{}, four{}, std::true_type{}, lanes{});
          }
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
