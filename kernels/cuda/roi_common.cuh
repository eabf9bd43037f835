// Pieces shared by the CUDA RoI kernels (internal): the compute type of each dtype,
// torchvision's RoIAlign bilinear sampler split per axis, and the scatter used by
// the backward kernels (float atomics, or order-independent fixed-point sums).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "core/cuda_backend.h"
#include "kernels/cuda/common.cuh"
#include "tvops/tensor.h"

namespace tvops::cuda::roi {

// float16/bfloat16 load 16 bits and compute in float32; float64 stays float64.
template <typename T> struct Acc { using type = T; };
template <> struct Acc<__half> { using type = float; };
template <> struct Acc<__nv_bfloat16> { using type = float; };
template <typename T> using acc_t = typename Acc<T>::type;

template <typename T>
__device__ inline acc_t<T> load(const T* p) { return static_cast<acc_t<T>>(*p); }

template <typename T, typename A>
__device__ inline T store_cast(A v) { return static_cast<T>(v); }

// Strides (in elements) of an [N, C, H, W] view, so channels-last or sliced maps
// need no copy.
struct Strides4 {
  int64_t n, c, h, w;
};
inline Strides4 strides_of(const Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2), t.stride(3)}; }

// One axis of one RoIAlign sample: torchvision's bilinear_interpolate is separable
// (the outside test is a product of a y test and an x test, the weights are products
// of y and x weights), so a RoI needs PH*gh y samples and PW*gw x samples, not their
// product. lo < 0 marks a coordinate outside [-1, size] (NaN included).
template <typename A>
struct AxisSample {
  int lo, hi;
  A l, h;
};

template <typename A>
__device__ inline AxisSample<A> axis_sample(A v, int size) {
  AxisSample<A> s;
  if (!(v >= A(-1) && v <= A(size))) {
    s.lo = s.hi = -1;
    s.l = s.h = A(0);
    return s;
  }
  if (v <= A(0)) v = A(0);
  int lo = static_cast<int>(v), hi;
  if (lo >= size - 1) {
    lo = hi = size - 1;
    v = static_cast<A>(lo);
  } else {
    hi = lo + 1;
  }
  s.lo = lo;
  s.hi = hi;
  s.l = v - static_cast<A>(lo);
  s.h = A(1) - s.l;
  return s;
}

// The adaptive grid ceil(extent / pooled), kept finite: torchvision casts it to int
// unchecked (UB for NaN or huge RoIs); here NaN gives 0 samples and the grid is capped
// at 2^20 per axis so index arithmetic cannot overflow.
template <typename A>
__device__ inline int grid_size(int sampling_ratio, A extent, int pooled) {
  if (sampling_ratio > 0) return sampling_ratio;
  A g = ceil(extent / static_cast<A>(pooled));
  if (!(g == g)) return 0;
  g = g > A(1 << 20) ? A(1 << 20) : g;
  g = g < A(-(1 << 20)) ? A(-(1 << 20)) : g;
  return static_cast<int>(g);
}

// Batch index of a RoI as torchvision reads it ((int) truncation), or -1 when it is
// not an image of the batch: those RoIs pool zeros and get no gradient (the front-end
// does not copy the RoIs to the host to check them; see README).
template <typename A>
__device__ inline int batch_index(A b, int batch) {
  return (b > A(-1) && b < A(batch)) ? static_cast<int>(b) : -1;
}

// ---- Backward scatter ----

// Deterministic mode sums finite contributions as 64-bit fixed point: integer adds
// commute, so the result is the same bits whatever order the atomics land in. The
// fixed-point unit is 2^-shift with shift chosen from max|grad| and a bound on how many
// contributions a pixel can get, so the sum cannot overflow 2^62. Non-finite
// contributions go to the float buffer with float atomics; inf/NaN sums do not depend
// on the order either.
struct FixedPointScale {
  unsigned long long max_bits;  // max |grad| over finite values, as the bits of a double
};

template <typename A, bool Deterministic>
struct Scatter {
  static constexpr bool deterministic = Deterministic;
  A* out;                       // float result (deterministic: non-finite parts only)
  unsigned long long* fixed;    // deterministic: fixed-point sums, same indexing as out
  const FixedPointScale* scale;  // deterministic: max |grad|, from max_abs_kernel
  int headroom_bits;            // deterministic: ceil(log2(contributions bound)) + 2

  __device__ inline A unit() const {
    // 2^(61 - headroom - e) with max|grad| < 2^e; as a power of two it scales exactly.
    const double m = __longlong_as_double(static_cast<long long>(scale->max_bits));
    int e = 0;
    if (m > 0) frexp(m, &e);
    return static_cast<A>(ldexp(1.0, 61 - headroom_bits - e));
  }

  __device__ inline void add(int64_t i, A v, A u) const {
    if constexpr (!Deterministic) {
      atomicAdd(out + i, v);
    } else {
      if (isfinite(v)) {
        const long long q = sizeof(A) == 8 ? __double2ll_rn(double(v) * double(u)) : __float2ll_rn(float(v) * float(u));
        atomicAdd(fixed + i, static_cast<unsigned long long>(q));
      } else {
        atomicAdd(out + i, v);
      }
    }
  }
};

// max |g| over the finite entries of a strided [K, C, PH, PW] grad.
template <typename T>
__global__ void max_abs_kernel(const T* g, Strides4 s, int64_t C, int64_t PH, int64_t PW, int64_t n,
                               FixedPointScale* out) {
  double m = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t pw = i % PW, ph = i / PW % PH, c = i / (PW * PH) % C, k = i / (PW * PH * C);
    const double v = fabs(double(load(g + k * s.n + c * s.c + ph * s.h + pw * s.w)));
    if (isfinite(v) && v > m) m = v;
  }
  for (int o = 16; o > 0; o /= 2) m = fmax(m, __shfl_down_sync(0xffffffffu, m, o));
  // Non-negative doubles order like their bit patterns.
  if ((threadIdx.x & 31) == 0 && m > 0)
    atomicMax(&out->max_bits, static_cast<unsigned long long>(__double_as_longlong(m)));
}

// out[i] = out[i] (non-finite part) + fixed[i] * 2^-shift, then cast to the output dtype.
template <typename T, typename A>
__global__ void finish_fixed_kernel(const A* partial, const unsigned long long* fixed, const FixedPointScale* scale,
                                    int headroom_bits, int64_t n, T* out) {
  const double m = __longlong_as_double(static_cast<long long>(scale->max_bits));
  int e = 0;
  if (m > 0) frexp(m, &e);
  const double inv = ldexp(1.0, -(61 - headroom_bits - e));
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const A v = static_cast<A>(double(static_cast<long long>(fixed[i])) * inv) + partial[i];
    out[i] = store_cast<T>(v);
  }
}

template <typename T, typename A>
__global__ void cast_kernel(const A* in, int64_t n, T* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = store_cast<T>(in[i]);
}

// ---- Channels-last layout ----
// With channels innermost, the 32 lanes of a warp read or add 32 neighbouring channels
// of one pixel: one cache line per access, where NCHW planes give a line per lane.
// The copies between the layouts go through 64-channel x 64-pixel tiles in shared memory.

// Both copies (NCHW -> NHWC for the forward, the backward's NHWC sums -> NCHW) move
// 64-channel x 64-pixel tiles; copy_tiles below says how.
inline constexpr int kTileC = 64, kTilePx = 64, kTileThreads = 256;

template <int V, typename X>
struct alignas(V * sizeof(X)) VecOf {
  X v[V];
};

// The layout copies' tiles: channels fastest, then pixels, then images.
struct LayoutTile {
  int c0, p0;
  int64_t n;
};
__device__ inline LayoutTile layout_tile(int64_t t, int C, int HW) {
  const int tiles_c = (C + kTileC - 1) / kTileC, tiles_p = (HW + kTilePx - 1) / kTilePx;
  return {int(t % tiles_c) * kTileC, int(t / tiles_c % tiles_p) * kTilePx, t / tiles_c / tiles_p};
}
__host__ __device__ inline int64_t layout_tiles(int64_t N, int64_t C, int64_t HW) {
  return N * ((C + kTileC - 1) / kTileC) * ((HW + kTilePx - 1) / kTilePx);
}
// Channels and pixels the copies index in int, a tile past the last one included.
inline bool layout_fits(int64_t C, int64_t HW) {
  constexpr int64_t limit = (int64_t(1) << 31) - kTileC - kTilePx;
  return C < limit && HW < limit;
}
// The copies' grid: blocks stride over the tiles.
inline unsigned layout_blocks(int64_t N, int64_t C, int64_t HW) {
  return unsigned(std::min<int64_t>(layout_tiles(N, C, HW), int64_t(1) << 30));
}
// Calls launch(VL, VS) with each 4 (16-byte vectors of 4-byte elements) where vl / vs
// allow it, else 1, as std::integral_constant; elements of 8 bytes take 1 and 1 (their
// 32-byte vectors measured slower: ra7's backward copy 188 us, scalar 172).
template <typename X, typename Launch>
void with_layout_vectors(bool vl, bool vs, Launch&& launch) {
  using one = std::integral_constant<int, 1>;
  using four = std::integral_constant<int, 4>;
  if constexpr (sizeof(X) <= 4) {
    if (vl)
      vs ? launch(four{}, four{}) : launch(four{}, one{});
    else
      vs ? launch(one{}, four{}) : launch(one{}, one{});
  } else {
    launch(one{}, one{});
  }
}

// Both layout copies: a source [N][rows][cols] (cols contiguous) to a destination
// [N][cols][rows] through [64 x 65] tiles of X. load(n, row, col, v) reads VL elements
// from col on of a source row (called only inside the map; a thread issues all its loads
// of a tile before its first shared store); store(n, col, row, w) writes VS elements from
// row on of a destination row. ChannelRows: the source's rows are the channels (the tile
// order stays channels fastest either way).
template <typename X, int VL, int VS, bool ChannelRows, typename Load, typename Store>
__device__ void copy_tiles(int N, int rows, int cols, Load&& load, Store&& store) {
  static_assert(kTileC == kTilePx, "square tiles");
  constexpr int S = kTileC, LR = S / VL, LS = kTileThreads / LR;  // load: threads a source row, rows a pass
  constexpr int SR = S / VS, SS = kTileThreads / SR;              // store: threads a destination row, rows a pass
  __shared__ X tile[S][S + 1];  // [source column][source row]; +1 spreads a column over the banks
  const int lcol = threadIdx.x % LR * VL, lrow = threadIdx.x / LR;
  const int scol = threadIdx.x % SR * VS, srow = threadIdx.x / SR;
  const int C = ChannelRows ? rows : cols, HW = ChannelRows ? cols : rows;
  const int64_t tiles = layout_tiles(N, C, HW);
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const LayoutTile lt = layout_tile(t, C, HW);
    const int r0 = ChannelRows ? lt.c0 : lt.p0, c0 = ChannelRows ? lt.p0 : lt.c0;
    X v[S / LS][VL];
#pragma unroll
    for (int j = 0; j < S / LS; ++j) {
      const int row = r0 + lrow + j * LS, col = c0 + lcol;
      // with VL > 1, cols is a multiple of VL: a vector is wholly in or out
      if (row < rows && col < cols) {
        load(lt.n, row, col, v[j]);
      } else {
#pragma unroll
        for (int k = 0; k < VL; ++k) v[j][k] = X(0);
      }
    }
#pragma unroll
    for (int j = 0; j < S / LS; ++j)
#pragma unroll
      for (int k = 0; k < VL; ++k) tile[lcol + k][lrow + j * LS] = v[j][k];
    __syncthreads();
#pragma unroll
    for (int j = 0; j < S / SS; ++j) {
      const int col = c0 + srow + j * SS, row = r0 + scol;
      if (col < cols && row < rows) {  // with VS > 1, rows is a multiple of VS
        X w[VS];
#pragma unroll
        for (int k = 0; k < VS; ++k) w[k] = tile[srow + j * SS][scol + k];
        store(lt.n, col, row, w);
      }
    }
    __syncthreads();
  }
}

// Contiguous [N, H, W, C] of A (plus, in deterministic mode, the fixed-point sums) ->
// contiguous [N, C, H, W] of T (the 32x32 tiles it replaced ran at ~2.1 TB/s). VL = 4: a
// thread loads 4 channels of a pixel as one vector (C a multiple of 4); VS = 4: it stores
// 4 pixels of a plane as one vector (planes of whole vectors).
template <typename T, typename A, bool Deterministic, int VL, int VS>
__global__ void __launch_bounds__(kTileThreads)
    from_channels_last_kernel(const A* __restrict__ partial, const unsigned long long* __restrict__ fixed,
                              const FixedPointScale* scale, int headroom_bits, int N, int C, int HW,
                              T* __restrict__ out) {
  double inv = 0;
  if (Deterministic) {
    const double m = __longlong_as_double(static_cast<long long>(scale->max_bits));
    int e = 0;
    if (m > 0) frexp(m, &e);
    inv = ldexp(1.0, -(61 - headroom_bits - e));
  }
  copy_tiles<A, VL, VS, false>(  // rows: pixels, columns: channels
      N, HW, C,
      [&](int64_t n, int p, int c, A (&v)[VL]) {
        const int64_t i = (n * HW + p) * C + c;
        const VecOf<VL, A> a = *reinterpret_cast<const VecOf<VL, A>*>(partial + i);
        VecOf<VL, unsigned long long> q{};
        if (Deterministic) q = *reinterpret_cast<const VecOf<VL, unsigned long long>*>(fixed + i);
#pragma unroll
        for (int k = 0; k < VL; ++k)
          v[k] = Deterministic ? static_cast<A>(double(static_cast<long long>(q.v[k])) * inv) + a.v[k] : a.v[k];
      },
      [&](int64_t n, int c, int p, const A (&w)[VS]) {
        VecOf<VS, T> o;
#pragma unroll
        for (int k = 0; k < VS; ++k) o.v[k] = store_cast<T>(w[k]);
        *reinterpret_cast<VecOf<VS, T>*>(out + (n * C + c) * HW + p) = o;
      });
}

// [N, C, H, W] of T (any strides) -> contiguous [N, H, W, C], the mirror of
// from_channels_last_kernel (the 32x32 tiles it replaced ran at ~2.0 TB/s: 121 us for the
// ra7 map on an H100). VL = 4: a thread loads 4 pixels of a plane as one vector (rows
// contiguous in whole vectors); 1: single pixels at any strides. VS = 4: it stores 4
// channels of a pixel as one vector (C a multiple of 4).
template <typename T, int VL, int VS>
__global__ void __launch_bounds__(kTileThreads)
    to_channels_last_kernel(const T* __restrict__ in, Strides4 s, int N, int C, int HW, int W, T* __restrict__ out) {
  copy_tiles<T, VL, VS, true>(  // rows: channels, columns: pixels
      N, C, HW,
      [&](int64_t n, int c, int p, T (&v)[VL]) {
        const T* plane = in + n * s.n + int64_t(c) * s.c;
        if constexpr (VL > 1) {
          const VecOf<VL, T> a = *reinterpret_cast<const VecOf<VL, T>*>(plane + p);
#pragma unroll
          for (int k = 0; k < VL; ++k) v[k] = a.v[k];
        } else {
          v[0] = s.w == 1 && s.h == W ? plane[p] : plane[int64_t(p / W) * s.h + int64_t(p % W) * s.w];
        }
      },
      [&](int64_t n, int p, int c, const T (&w)[VS]) {
        VecOf<VS, T> o;
#pragma unroll
        for (int k = 0; k < VS; ++k) o.v[k] = w[k];
        *reinterpret_cast<VecOf<VS, T>*>(out + (n * HW + p) * C + c) = o;
      });
}

inline bool is_channels_last(const Tensor& t) {
  const int64_t C = t.size(1), H = t.size(2), W = t.size(3);
  return t.stride(1) == 1 && (W == 1 || t.stride(3) == C) && (H == 1 || t.stride(2) == W * C);
}

// The [N, H, W, C] strides of a contiguous channels-last buffer, as NCHW strides.
inline Strides4 channels_last_strides(int64_t C, int64_t H, int64_t W) { return {H * W * C, 1, W * C, C}; }

// Strides of `x` as a channels-last map: x itself when it already is one, else a
// channels-last copy made into `copy`.
template <typename T>
const T* channels_last_view(const Tensor& x, Tensor& copy, Strides4& strides, const Context& ctx) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  if (is_channels_last(x)) {
    strides = strides_of(x);
    return x.data<T>();
  }
  // checked before allocating: a map this large would need gigabytes for nothing
  TVOPS_CHECK(x.numel() == 0 || layout_fits(C, H * W), Value, "RoI ops: feature map ", x.describe(),
              " is too large for the CUDA layout copy");
  copy = Tensor::empty({N, H, W, C}, x.dtype(), x.device(), ctx);
  strides = channels_last_strides(C, H, W);
  if (copy.numel() > 0) {
    const Strides4 s = strides_of(x);
    const int64_t HW = H * W;
    const bool vl = s.w == 1 && s.h == W && HW % 4 == 0 && s.c % 4 == 0 && s.n % 4 == 0 &&
                    reinterpret_cast<uintptr_t>(x.data<T>()) % (4 * sizeof(T)) == 0;
    const bool vs = C % 4 == 0;  // the copy is a fresh allocation: aligned
    with_layout_vectors<T>(vl, vs, [&](auto l, auto v) {
      to_channels_last_kernel<T, decltype(l)::value, decltype(v)::value>
          <<<layout_blocks(N, C, HW), kTileThreads, 0, static_cast<cudaStream_t>(ctx.cuda_stream)>>>(
              x.data<T>(), s, int(N), int(C), int(HW), int(W), copy.data<T>());
    });
    TVOPS_CUDA_CHECK(cudaGetLastError());
  }
  return copy.data<T>();
}

// ---- Host helpers ----

inline void check_int_range(const char* op, int64_t v, const char* what) {
  TVOPS_CHECK(v >= 0 && v < (int64_t(1) << 31), Value, op, ": ", what, " = ", v,
              " is too large for the CUDA kernels (int32 indexing)");
}

// Output channels per block: about 512 outputs a block, and no more than 65535 chunks.
inline int chunk_for(int64_t C_out, int64_t bins) {
  int64_t chunk = std::max<int64_t>(1, 512 / bins);
  chunk = std::min(chunk, std::max<int64_t>(C_out, 1));
  chunk = std::max(chunk, (C_out + 65534) / 65535);
  return static_cast<int>(chunk);
}

inline void check_sizes(const char* op, int64_t K, int64_t N, int64_t C, int64_t PH, int64_t PW) {
  check_int_range(op, K, "number of RoIs");
  check_int_range(op, N, "batch");
  check_int_range(op, C, "channels");
  check_int_range(op, PH * PW, "pooled size");
  check_int_range(op, N * C, "batch * channels");
}

// Calls f(T{}) with T the CUDA type of dtype.
template <typename F>
inline decltype(auto) dispatch(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float64: return f(double{});
    case DType::Float16: return f(__half{});
    case DType::BFloat16: return f(__nv_bfloat16{});
    default: return f(float{});
  }
}

inline unsigned capped_blocks(int64_t n, int threads) {
  const unsigned b = blocks_for(n, threads);
  return b > 8192 ? 8192 : b;
}

inline int ceil_log2(int64_t v) {
  int b = 0;
  while ((int64_t(1) << b) < v && b < 62) ++b;
  return b;
}

// Device buffers of one backward call: the float result (A) and, in deterministic
// mode, the fixed-point sums and the scale. `finish` writes the dtype-T result.
template <typename A>
struct GradBuffers {
  std::shared_ptr<void> partial, fixed, scale;
  int headroom_bits = 0;
  int64_t n = 0;

  // `result`: the caller's output when its dtype is A (summed in place), else null.
  GradBuffers(int64_t elements, bool deterministic, int64_t contributions_bound, void* result, int device,
              cudaStream_t stream)
      : n(elements) {
    partial = result ? std::shared_ptr<void>(result, [](void*) {}) : allocate(std::size_t(n) * sizeof(A), device, stream);
    TVOPS_CUDA_CHECK(cudaMemsetAsync(partial.get(), 0, std::size_t(n) * sizeof(A), stream));
    if (deterministic) {
      fixed = allocate(std::size_t(n) * sizeof(unsigned long long), device, stream);
      TVOPS_CUDA_CHECK(cudaMemsetAsync(fixed.get(), 0, std::size_t(n) * sizeof(unsigned long long), stream));
      scale = allocate(sizeof(FixedPointScale), device, stream);
      TVOPS_CUDA_CHECK(cudaMemsetAsync(scale.get(), 0, sizeof(FixedPointScale), stream));
      headroom_bits = ceil_log2(contributions_bound < 1 ? 1 : contributions_bound) + 2;
      TVOPS_CHECK(headroom_bits < 48, Value, "deterministic RoI backward: too many contributions per pixel (",
                  contributions_bound, ")");
    }
  }

  template <bool D>
  Scatter<A, D> scatter() const {
    return Scatter<A, D>{static_cast<A*>(partial.get()), static_cast<unsigned long long*>(fixed.get()),
                         static_cast<const FixedPointScale*>(scale.get()), headroom_bits};
  }

  template <typename T>
  void measure(const T* grad, Strides4 s, int64_t C, int64_t PH, int64_t PW, int64_t count, cudaStream_t stream) {
    if (!fixed || count == 0) return;
    max_abs_kernel<<<capped_blocks(count, 256), 256, 0, stream>>>(grad, s, C, PH, PW, count,
                                                                  static_cast<FixedPointScale*>(scale.get()));
    TVOPS_CUDA_CHECK(cudaGetLastError());
  }

  // Writes the channels-last [N, H, W, C] block at `offset` as contiguous [N, C, H, W] of T.
  // The caller checks layout_fits(C, HW) before it makes the sums.
  template <typename T>
  void finish_channels_last(T* out, int64_t offset, int64_t N, int64_t C, int64_t HW, cudaStream_t stream) const {
    if (N * C * HW == 0) return;
    const A* p = static_cast<const A*>(partial.get()) + offset;
    const auto* f = static_cast<const unsigned long long*>(fixed.get()) + (fixed ? offset : 0);
    const auto* sc = static_cast<const FixedPointScale*>(scale.get());
    const unsigned blocks = layout_blocks(N, C, HW);
    auto launch = [&](auto l, auto s) {
      constexpr int VL = decltype(l)::value, VS = decltype(s)::value;
      if (fixed)
        from_channels_last_kernel<T, A, true, VL, VS>
            <<<blocks, kTileThreads, 0, stream>>>(p, f, sc, headroom_bits, int(N), int(C), int(HW), out);
      else
        from_channels_last_kernel<T, A, false, VL, VS>
            <<<blocks, kTileThreads, 0, stream>>>(p, nullptr, nullptr, 0, int(N), int(C), int(HW), out);
    };
    const auto aligned = [](const void* q, std::size_t b) { return reinterpret_cast<uintptr_t>(q) % b == 0; };
    const bool vl = C % 4 == 0 && aligned(p, 4 * sizeof(A)) && (!fixed || aligned(f, 4 * sizeof(*f)));
    const bool vs = HW % 4 == 0 && aligned(out, 4 * sizeof(T));
    with_layout_vectors<A>(vl, vs, launch);
    TVOPS_CUDA_CHECK(cudaGetLastError());
  }

  // Writes elements [offset, offset + count) of the result into out (dtype T).
  template <typename T>
  void finish(T* out, int64_t offset, int64_t count, cudaStream_t stream) const {
    if (count == 0) return;
    const A* p = static_cast<const A*>(partial.get()) + offset;
    if (fixed) {
      finish_fixed_kernel<T, A><<<capped_blocks(count, 256), 256, 0, stream>>>(
          p, static_cast<const unsigned long long*>(fixed.get()) + offset,
          static_cast<const FixedPointScale*>(scale.get()), headroom_bits, count, out);
    } else if (static_cast<const void*>(p) != static_cast<const void*>(out)) {
      cast_kernel<T, A><<<capped_blocks(count, 256), 256, 0, stream>>>(p, count, out);
    }
    TVOPS_CUDA_CHECK(cudaGetLastError());
  }
};

}  // namespace tvops::cuda::roi
