// CUDA deform_conv2d (DCNv1 / DCNv2), forward and backward, without torchvision's
// im2col buffer (OPS.md §10 has the semantics; deform_conv2d.cuh the tile product and
// the sampler).
//
// Forward: an implicit GEMM per weight group, M = output pixels (flattened over the
// batch), N = output channels, K = (tap, input channel). Each K step the block samples
// the offset-shifted [pixels x 32 channels] patch of one tap straight into shared
// memory (one thread: one pixel, a run of channels sharing one bilinear sample), while
// cp.async brings the next step's packed weights; the warps multiply on tensor cores.
//
// Backward, two kernels:
//  - data: per (pixel tile, tap, block of input channels) the columns gradient
//    W^T . grad is a tile product over the output channels; the tile goes to shared
//    memory, and each thread walks its pixel's channels once: col2im atomics into
//    grad_input, and the grad_offset / grad_mask sums over the channels of an offset
//    group (one atomic per run of channels).
//  - weight: per (output-channel block, tap, input-channel block, slice of pixels)
//    grad . columns^T with the columns sampled again into shared memory; slices sum
//    with atomics.
// grad_bias is a plain reduction. float16 / bfloat16 accumulate the scattered sums in
// float32 buffers and cast at the end.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/deform_conv2d.cuh"
#include "kernels/cuda/ops.h"

namespace tvops::cuda {

namespace {

using namespace dcn;

// ---- per-arch choices (one table) ----
// Tile shapes are compile-time (Cfg); the table picks among the instantiated ones and
// sizes the split of the weight-gradient reduction. Every SM target of the build
// matrix (sm80 and later) has mma.sync with TF32 and bf16/fp16.
struct Tuning {
  int min_cc;            // first compute capability the row applies to
  int wide_min_channels; // forward / weight grad use 128-wide tiles above this many channels a group
  int weight_blocks_per_sm;  // weight-gradient blocks per SM to aim for (slices of pixels)
};
constexpr Tuning kTuning[] = {
    {80, 64, 2},   // sm80, sm86, sm89: 164 / 100 KB shared memory; 55-74 KB tiles give 1-2 blocks
    {90, 64, 2},   // sm90 (H100/H200; measured), sm100+, sm120+
};
inline const Tuning& tuning_for(int cc) {
  const Tuning* best = &kTuning[0];
  for (const Tuning& t : kTuning)
    if (cc >= t.min_cc) best = &t;
  return *best;
}

// ---- arguments ----
template <typename T, typename S>
struct Args {
  Geo g;
  const T* input;   // [N, Cin, H, W]
  const T* offset;  // [N, 2 G taps, Ho, Wo]
  const T* mask;    // [N, G taps, Ho, Wo] or null
  const T* bias;    // [Cout] or null (forward)
  const S* wpack;   // packed weights (forward layout, or the data-gradient layout)
  const T* grad;    // [N, Cout, Ho, Wo] (backward)
  T* out;           // forward output
  using A = typename AccOf<T>::type;
  A* grad_input;    // accumulators (zeroed)
  A* grad_offset;
  A* grad_mask;
  A* grad_weight;
  int split_pixels;  // weight gradient: pixels per slice (multiple of BK)
};

// ---- weight packing ----
// Forward: [gw][tap][K chunk of BK channels][Cout_g padded to BN][BK], zero padded.
template <class C>
__global__ void pack_forward_weights(const typename C::T* __restrict__ w, typename C::S* __restrict__ out, Geo g,
                                     int64_t total) {
  const int NC = (g.Cin_g + C::BK - 1) / C::BK;
  const int CoutP = (g.Cout_g + C::BN - 1) / C::BN * C::BN;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = i;
    const int k = int(r % C::BK);
    r /= C::BK;
    const int co = int(r % CoutP);
    r /= CoutP;
    const int kc = int(r % NC);
    r /= NC;
    const int tap = int(r % g.taps);
    const int gw = int(r / g.taps);
    const int c = kc * C::BK + k;
    typename C::A v = 0;
    if (co < g.Cout_g && c < g.Cin_g) v = ld(w + ((int64_t(gw) * g.Cout_g + co) * g.Cin_g + c) * g.taps + tap);
    out[i] = to_operand<C>(v);
  }
}

// Data gradient: [gw][tap][block of BN channels][chunk of BK output channels][BN][BK].
template <class C>
__global__ void pack_backward_weights(const typename C::T* __restrict__ w, typename C::S* __restrict__ out, Geo g,
                                      int64_t total) {
  const int NCB = (g.Cin_g + C::BN - 1) / C::BN;
  const int NCO = (g.Cout_g + C::BK - 1) / C::BK;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = i;
    const int k = int(r % C::BK);
    r /= C::BK;
    const int n = int(r % C::BN);
    r /= C::BN;
    const int kc = int(r % NCO);
    r /= NCO;
    const int cb = int(r % NCB);
    r /= NCB;
    const int tap = int(r % g.taps);
    const int gw = int(r / g.taps);
    const int c = cb * C::BN + n, co = kc * C::BK + k;
    typename C::A v = 0;
    if (co < g.Cout_g && c < g.Cin_g) v = ld(w + ((int64_t(gw) * g.Cout_g + co) * g.Cin_g + c) * g.taps + tap);
    out[i] = to_operand<C>(v);
  }
}

// ---- forward ----

// Samples this thread's run of R channels (local channels c0 .. c0 + R of weight group
// gw) at one tap for one pixel, masked, as operands into dst.
template <class C, int R>
__device__ inline void sample_run(const Args<typename C::T, typename C::S>& a, const Pix& px, int gw, int tap, int c0,
                                  typename C::S* dst, int& cached_key, Sample<typename C::A>& s) {
  using A = typename C::A;
  using S = typename C::S;
  const Geo& g = a.g;
  S vals[R];
  const int c_end = min(c0 + R, g.Cin_g);
  if (!px.ok || c0 >= g.Cin_g) {
#pragma unroll
    for (int r = 0; r < R; ++r) vals[r] = to_operand<C>(A(0));
  } else {
    const int cg0 = gw * g.Cin_g + c0;
    const int og0 = cg0 / g.cpg, og1 = (gw * g.Cin_g + c_end - 1) / g.cpg;
    const typename C::T* plane = a.input + (int64_t(px.b) * g.Cin + cg0) * g.HW;
    if (og0 == og1) {
      const int key = tap * g.G + og0;
      if (key != cached_key) {
        s = make_sample(g, a.offset, a.mask, px, tap, og0);
        cached_key = key;
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
        A v = 0;
        if (c0 + r < c_end) {
          A v00, v01, v10, v11;
          gather(plane + int64_t(r) * g.HW, s, g.W, v00, v01, v10, v11);
          v = s.m * bilinear(s, v00, v01, v10, v11);
        }
        vals[r] = to_operand<C>(v);
      }
    } else {  // the run crosses offset groups
#pragma unroll
      for (int r = 0; r < R; ++r) vals[r] = to_operand<C>(A(0));
      for (int r = 0; r < c_end - c0; ++r) {
        const int og = (cg0 + r) / g.cpg;
        const int key = tap * g.G + og;
        if (key != cached_key) {
          s = make_sample(g, a.offset, a.mask, px, tap, og);
          cached_key = key;
        }
        A v00, v01, v10, v11;
        gather(plane + int64_t(r) * g.HW, s, g.W, v00, v01, v10, v11);
        const A v = s.m * bilinear(s, v00, v01, v10, v11);
        // run-time index: keep it out of the register array
        S tmp[R];
#pragma unroll
        for (int q = 0; q < R; ++q) tmp[q] = q == r ? to_operand<C>(v) : vals[q];
#pragma unroll
        for (int q = 0; q < R; ++q) vals[q] = tmp[q];
      }
    }
  }
  store_run<S, R>(dst, vals);
}

template <class C>
__global__ void __launch_bounds__(kThreads, 2) forward_kernel(Args<typename C::T, typename C::S> a) {
  using T = typename C::T;
  using S = typename C::S;
  using A = typename C::A;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  S* sA = reinterpret_cast<S*>(smem_raw);  // [2][BM][P]
  S* sB = sA + 2 * C::BM * C::P;           // [2][BN][P]
  const Geo& g = a.g;
  constexpr int TPP = kThreads / C::BM, R = C::BK / TPP;
  const int NC = (g.Cin_g + C::BK - 1) / C::BK;
  const int NB = (g.Cout_g + C::BN - 1) / C::BN;
  const int CoutP = NB * C::BN;
  const int KT = g.taps * NC;
  const int prow = threadIdx.x % C::BM, rbase = threadIdx.x / C::BM * R;
  const int P0 = blockIdx.x * C::BM;
  const Pix px = decode(g, P0 + prow);
  for (int yb = blockIdx.y; yb < g.groups * NB; yb += gridDim.y) {
    const int gw = yb / NB, nb = yb % NB;
    const S* wblk = a.wpack + int64_t(gw) * KT * CoutP * C::BK + nb * C::BN * C::BK;
    const int64_t chunk_stride = int64_t(CoutP) * C::BK;
    A acc[C::kAcc];
#pragma unroll
    for (int e = 0; e < C::kAcc; ++e) acc[e] = 0;
    int cached_key = -1;
    Sample<A> s;
    load_tile_async<C, C::BN>(sB, wblk);
    cp_async_commit();
    for (int kt = 0; kt < KT; ++kt) {
      const int tap = kt / NC, c0 = (kt % NC) * C::BK;
      S* a_buf = sA + (kt & 1) * C::BM * C::P;
      sample_run<C, R>(a, px, gw, tap, c0 + rbase, a_buf + prow * C::P + rbase, cached_key, s);
      cp_async_wait_all();
      __syncthreads();
      if (kt + 1 < KT) {
        load_tile_async<C, C::BN>(sB + ((kt + 1) & 1) * C::BN * C::P, wblk + (kt + 1) * chunk_stride);
        cp_async_commit();
      }
      tile_product<C>(a_buf, sB + (kt & 1) * C::BN * C::P, acc);
    }
#pragma unroll
    for (int e = 0; e < C::kAcc; ++e) {
      int row, col;
      acc_coord<C>(e, row, col);
      const int co = nb * C::BN + col;
      const Pix q = decode(g, P0 + row);
      if (q.ok && co < g.Cout_g) {
        const int cog = gw * g.Cout_g + co;
        A v = acc[e];
        if (a.bias) v += ld(a.bias + cog);
        a.out[(int64_t(q.b) * g.Cout + cog) * g.HWo + q.pix] = from_acc<T>(v);
      }
    }
    __syncthreads();  // the next group's prologue reuses the buffers
  }
}

// ---- backward: data (grad_input, grad_offset, grad_mask) ----

template <class C>
__global__ void __launch_bounds__(kThreads) backward_data_kernel(Args<typename C::T, typename C::S> a) {
  using T = typename C::T;
  using S = typename C::S;
  using A = typename C::A;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  S* sA = reinterpret_cast<S*>(smem_raw);  // [2][BM][P]: grad, pixels x output channels
  S* sB = sA + 2 * C::BM * C::P;           // [2][BN][P]: weights, input channels x output channels
  A* sG = reinterpret_cast<A*>(smem_raw);  // after the product: [BM][BN + 1] columns gradient
  constexpr int GP = C::BN + 1;
  const Geo& g = a.g;
  constexpr int TPP = kThreads / C::BM, R = C::BK / TPP, R2 = C::BN / TPP;
  const int NCB = (g.Cin_g + C::BN - 1) / C::BN;
  const int NCO = (g.Cout_g + C::BK - 1) / C::BK;
  const int row = threadIdx.x % C::BM, part = threadIdx.x / C::BM;
  const int P0 = blockIdx.x * C::BM;
  const Pix px = decode(g, P0 + row);
  for (int yb = blockIdx.y; yb < g.groups * g.taps * NCB; yb += gridDim.y) {
    const int gw = yb / (g.taps * NCB), tap = yb / NCB % g.taps, cb = yb % NCB;
    const S* wblk = a.wpack + (int64_t(gw * g.taps + tap) * NCB + cb) * NCO * C::BN * C::BK;
    const T* grow = a.grad + (int64_t(px.b) * g.Cout + gw * g.Cout_g) * g.HWo + px.pix;
    A acc[C::kAcc];
#pragma unroll
    for (int e = 0; e < C::kAcc; ++e) acc[e] = 0;
    load_tile_async<C, C::BN>(sB, wblk);
    cp_async_commit();
    for (int kt = 0; kt < NCO; ++kt) {
      const int co0 = kt * C::BK + part * R;
      S vals[R];
#pragma unroll
      for (int r = 0; r < R; ++r)
        vals[r] = to_operand<C>(px.ok && co0 + r < g.Cout_g ? ld(grow + int64_t(co0 + r) * g.HWo) : A(0));
      S* a_buf = sA + (kt & 1) * C::BM * C::P;
      store_run<S, R>(a_buf + row * C::P + part * R, vals);
      cp_async_wait_all();
      __syncthreads();
      if (kt + 1 < NCO) {
        load_tile_async<C, C::BN>(sB + ((kt + 1) & 1) * C::BN * C::P, wblk + (kt + 1) * C::BN * C::BK);
        cp_async_commit();
      }
      tile_product<C>(a_buf, sB + (kt & 1) * C::BN * C::P, acc);
    }
    __syncthreads();  // the product is done with the tiles
#pragma unroll
    for (int e = 0; e < C::kAcc; ++e) {
      int r, c;
      acc_coord<C>(e, r, c);
      sG[r * GP + c] = acc[e];
    }
    __syncthreads();
    // Scatter: this thread's pixel, channels c_lo .. c_hi of the block.
    const int c_lo = cb * C::BN + part * R2, c_hi = min(c_lo + R2, g.Cin_g);
    if (px.ok && c_lo < c_hi) {
      const int64_t img = int64_t(px.b) * g.Cin;
      int og_cur = -1;
      Sample<A> s;
      A gy_sum = 0, gx_sum = 0, gm_sum = 0;
      auto flush = [&]() {
        const int64_t ob = ((int64_t(px.b) * g.G + og_cur) * 2 * g.taps + 2 * tap) * g.HWo + px.pix;
        atomicAdd(a.grad_offset + ob, gy_sum);
        atomicAdd(a.grad_offset + ob + g.HWo, gx_sum);
        if (g.use_mask) atomicAdd(a.grad_mask + ((int64_t(px.b) * g.G + og_cur) * g.taps + tap) * g.HWo + px.pix, gm_sum);
      };
#pragma unroll 4
      for (int cl = c_lo; cl < c_hi; ++cl) {
        const int c = gw * g.Cin_g + cl;
        const int og = c / g.cpg;
        if (og != og_cur) {
          if (og_cur >= 0) flush();
          og_cur = og;
          s = make_sample(g, a.offset, a.mask, px, tap, og);
          gy_sum = gx_sum = gm_sum = 0;
        }
        if (s.ok == 0) continue;
        const A gc = sG[row * GP + (cl - cb * C::BN)];
        const int64_t plane = (img + c) * g.HW;
        A v00, v01, v10, v11;
        gather(a.input + plane, s, g.W, v00, v01, v10, v11);
        const A mg = s.m * gc;
        if (s.ok & 16u) {
          A* gp = a.grad_input + plane + s.idx;
          if (s.ok & 1u) atomicAdd(gp, s.w00 * mg);
          if (s.ok & 2u) atomicAdd(gp + 1, s.w01 * mg);
          if (s.ok & 4u) atomicAdd(gp + g.W, s.w10 * mg);
          if (s.ok & 8u) atomicAdd(gp + g.W + 1, s.w11 * mg);
          gm_sum += gc * bilinear(s, v00, v01, v10, v11);
        }
        // torchvision's get_coordinate_weight (corners outside the image read as 0)
        gy_sum += mg * (s.lx * (v11 - v01) + (A(1) - s.lx) * (v10 - v00));
        gx_sum += mg * (s.ly * (v11 - v10) + (A(1) - s.ly) * (v01 - v00));
      }
      flush();
    }
    __syncthreads();  // the next block's prologue reuses the buffers
  }
}

// ---- backward: weight ----

template <class C>
__global__ void __launch_bounds__(kThreads, 2) backward_weight_kernel(Args<typename C::T, typename C::S> a) {
  using T = typename C::T;
  using S = typename C::S;
  using A = typename C::A;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  S* sA = reinterpret_cast<S*>(smem_raw);  // [2][BM][P]: grad, output channels x pixels
  S* sB = sA + 2 * C::BM * C::P;           // [2][BN][P]: columns, input channels x pixels
  const Geo& g = a.g;
  constexpr int ROWS = kThreads / C::BK;    // grad rows staged per pass
  constexpr int RA = C::BM / ROWS;          // passes
  constexpr int RB = C::BN / ROWS;          // channels sampled per thread
  const int NMB = (g.Cout_g + C::BM - 1) / C::BM, NCB = (g.Cin_g + C::BN - 1) / C::BN;
  const int gw = blockIdx.x / NMB, mb = blockIdx.x % NMB;
  const int tap = blockIdx.y / NCB, cb = blockIdx.y % NCB;
  const int p_begin = blockIdx.z * a.split_pixels;
  const int p_end = min(g.NP, p_begin + a.split_pixels);
  const int col = threadIdx.x % C::BK, lane_row = threadIdx.x / C::BK;
  const int c_run = cb * C::BN + lane_row * RB;  // this thread's sampled channels (local)
  const int c_end = min(c_run + RB, g.Cin_g);
  A acc[C::kAcc];
#pragma unroll
  for (int e = 0; e < C::kAcc; ++e) acc[e] = 0;
  int cached_key = -1;
  Sample<A> s;
  int it = 0;
  for (int p0 = p_begin; p0 < p_end; p0 += C::BK, ++it) {
    S* a_buf = sA + (it & 1) * C::BM * C::P;
    S* b_buf = sB + (it & 1) * C::BN * C::P;
    const int P = p0 + col;
    Pix px = decode(g, P);
    px.ok = px.ok && P < p_end;
    // grad rows
    const T* grow = a.grad + (int64_t(px.b) * g.Cout + gw * g.Cout_g + mb * C::BM) * g.HWo + px.pix;
#pragma unroll
    for (int i = 0; i < RA; ++i) {
      const int r = lane_row + i * ROWS;
      const bool ok = px.ok && mb * C::BM + r < g.Cout_g;
      a_buf[r * C::P + col] = to_operand<C>(ok ? ld(grow + int64_t(r) * g.HWo) : A(0));
    }
    // columns
    if (px.ok && c_run < c_end) {
      const int cg0 = gw * g.Cin_g + c_run;
      const T* plane = a.input + (int64_t(px.b) * g.Cin + cg0) * g.HW;
      const int og0 = cg0 / g.cpg, og1 = (gw * g.Cin_g + c_end - 1) / g.cpg;
      cached_key = -1;  // a new pixel every step
      if (og0 == og1) {
        s = make_sample(g, a.offset, a.mask, px, tap, og0);
#pragma unroll
        for (int r = 0; r < RB; ++r) {
          A v = 0;
          if (c_run + r < c_end) {
            A v00, v01, v10, v11;
            gather(plane + int64_t(r) * g.HW, s, g.W, v00, v01, v10, v11);
            v = s.m * bilinear(s, v00, v01, v10, v11);
          }
          b_buf[(lane_row * RB + r) * C::P + col] = to_operand<C>(v);
        }
      } else {
        for (int r = 0; r < RB; ++r) {
          A v = 0;
          if (c_run + r < c_end) {
            const int og = (cg0 + r) / g.cpg;
            if (og != cached_key) {
              s = make_sample(g, a.offset, a.mask, px, tap, og);
              cached_key = og;
            }
            A v00, v01, v10, v11;
            gather(plane + int64_t(r) * g.HW, s, g.W, v00, v01, v10, v11);
            v = s.m * bilinear(s, v00, v01, v10, v11);
          }
          b_buf[(lane_row * RB + r) * C::P + col] = to_operand<C>(v);
        }
      }
    } else {
#pragma unroll
      for (int r = 0; r < RB; ++r) b_buf[(lane_row * RB + r) * C::P + col] = to_operand<C>(A(0));
    }
    __syncthreads();
    tile_product<C>(a_buf, b_buf, acc);
  }
#pragma unroll
  for (int e = 0; e < C::kAcc; ++e) {
    int r, c;
    acc_coord<C>(e, r, c);
    const int co = mb * C::BM + r, ci = cb * C::BN + c;
    if (co < g.Cout_g && ci < g.Cin_g)
      atomicAdd(a.grad_weight + ((int64_t(gw) * g.Cout_g + co) * g.Cin_g + ci) * g.taps + tap, acc[e]);
  }
}

// ---- small kernels ----

template <typename T, typename A>
__global__ void bias_grad_kernel(const T* __restrict__ grad, int N, int Cout, int HWo, T* __restrict__ out) {
  __shared__ A part[kThreads / 32];
  const int co = blockIdx.x;
  A sum = 0;
  const int64_t n = int64_t(N) * HWo;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t b = i / HWo, p = i - b * HWo;
    sum += ld(grad + (b * Cout + co) * HWo + p);
  }
  for (int o = 16; o > 0; o /= 2) sum += __shfl_down_sync(0xffffffffu, sum, o);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    A t = 0;
    for (int w = 0; w < kThreads / 32; ++w) t += part[w];
    out[co] = from_acc<T>(t);
  }
}

template <typename T, typename A>
__global__ void cast_kernel(const A* __restrict__ in, int64_t n, T* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_acc<T>(in[i]);
}

// ---- host side ----

Geo make_geo(const DeformConvShape& s) {
  auto fits = [](int64_t v, const char* what) {
    TVOPS_CHECK(v >= 0 && v < (int64_t(1) << 31), Value, "deform_conv2d: ", what, " = ", v,
                " is too large for the CUDA kernels (int32 indexing)");
    return static_cast<int>(v);
  };
  Geo g{};
  g.N = fits(s.batch, "batch");
  g.Cin = fits(s.in_channels, "in_channels");
  g.H = fits(s.height, "height");
  g.W = fits(s.width, "width");
  g.Cout = fits(s.out_channels, "out_channels");
  g.kh = fits(s.kernel_h, "kernel_h");
  g.kw = fits(s.kernel_w, "kernel_w");
  g.Ho = fits(s.out_h, "out_h");
  g.Wo = fits(s.out_w, "out_w");
  g.sh = fits(s.stride_h, "stride_h");
  g.sw = fits(s.stride_w, "stride_w");
  g.ph = fits(s.pad_h, "pad_h");
  g.pw = fits(s.pad_w, "pad_w");
  g.dh = fits(s.dilation_h, "dilation_h");
  g.dw = fits(s.dilation_w, "dilation_w");
  g.groups = fits(s.groups, "groups");
  g.G = fits(s.offset_groups, "offset_groups");
  g.Cin_g = fits(s.in_per_group(), "in_channels / groups");
  g.Cout_g = fits(s.out_per_group(), "out_channels / groups");
  g.cpg = fits(s.in_per_offset_group(), "in_channels / offset_groups");
  g.taps = fits(s.taps(), "kernel_h * kernel_w");
  g.HWo = fits(s.out_h * s.out_w, "out_h * out_w");
  g.HW = fits(s.height * s.width, "height * width");
  g.NP = fits(s.batch * s.out_h * s.out_w, "batch * out_h * out_w");
  fits(s.batch * s.offset_groups * 2 * s.taps(), "offset channels * batch");
  fits(s.height * s.width + s.width + 1, "height * width");
  // coordinates reach at most (out - 1) * stride + (k - 1) * dilation before the offset
  fits((s.out_h - 1) * s.stride_h + (s.kernel_h - 1) * s.dilation_h + 1, "sampled rows");
  fits((s.out_w - 1) * s.stride_w + (s.kernel_w - 1) * s.dilation_w + 1, "sampled columns");
  g.use_mask = s.use_mask;
  return g;
}

int sm_count(int device) {
  int n = 0;
  TVOPS_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
  return n;
}

// Compute capability (major * 10 + minor) by attribute: cheaper than the properties.
int compute_capability(int device) {
  int major = 0, minor = 0;
  TVOPS_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  TVOPS_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return major * 10 + minor;
}

template <typename Kernel>
void set_smem(Kernel kernel, int bytes) {
  if (bytes > 48 * 1024)
    TVOPS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
}

unsigned grid_y(int64_t n) { return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(n, 1), 65535)); }

template <typename T, typename S>
Args<T, S> base_args(const Geo& g, const Tensor& input, const Tensor& offset, const Tensor& mask) {
  Args<T, S> a{};
  a.g = g;
  a.input = input.data<T>();
  a.offset = offset.data<T>();
  a.mask = g.use_mask ? mask.data<T>() : nullptr;
  return a;
}

template <class C>
void run_forward(const Geo& g, const Tensor& input, const Tensor& weight, const Tensor& offset, const Tensor& mask,
                 const Tensor& bias, Tensor& out, const Context& ctx) {
  using T = typename C::T;
  using S = typename C::S;
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  const int NC = (g.Cin_g + C::BK - 1) / C::BK, NB = (g.Cout_g + C::BN - 1) / C::BN;
  const int64_t packed = int64_t(g.groups) * g.taps * NC * NB * C::BN * C::BK;
  Tensor wp = Tensor::empty({packed * int64_t(sizeof(S))}, DType::UInt8, input.device(), ctx);
  pack_forward_weights<C><<<grid_stride_blocks(packed), 256, 0, stream>>>(weight.data<T>(), wp.data<S>(), g, packed);
  TVOPS_CUDA_CHECK(cudaGetLastError());
  Args<T, S> a = base_args<T, S>(g, input, offset, mask);
  a.bias = bias.defined() ? bias.data<T>() : nullptr;
  a.wpack = wp.data<S>();
  a.out = out.data<T>();
  auto kernel = forward_kernel<C>;
  set_smem(kernel, C::kTileBytes);
  const dim3 grid(unsigned((g.NP + C::BM - 1) / C::BM), grid_y(int64_t(g.groups) * NB));
  kernel<<<grid, kThreads, C::kTileBytes, stream>>>(a);
  TVOPS_CUDA_CHECK(cudaGetLastError());
}

// Data gradient (Cd) and weight gradient (Cw) configurations of one dtype and mode.
template <class Cd, class Cw>
void run_backward(const Geo& g, const Tensor& grad, const Tensor& input, const Tensor& weight, const Tensor& offset,
                  const Tensor& mask, std::vector<Tensor>& res, const Tuning& tune, const Context& ctx) {
  using T = typename Cd::T;
  using S = typename Cd::S;
  using A = typename Cd::A;
  constexpr bool direct = std::is_same_v<T, A>;  // accumulate straight into the outputs
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  const Device dev = input.device();
  const DType acc_type = std::is_same_v<A, double> ? DType::Float64 : DType::Float32;
  Tensor& grad_input = res[0];
  Tensor& grad_weight = res[1];
  Tensor& grad_offset = res[2];
  Tensor& grad_mask = res[3];
  auto acc_buffer = [&](Tensor& out) -> Tensor {
    Tensor b = direct ? out : Tensor::empty(out.sizes(), acc_type, dev, ctx);
    TVOPS_CUDA_CHECK(cudaMemsetAsync(b.data_ptr(), 0, b.nbytes(), stream));
    return b;
  };
  Tensor gi = acc_buffer(grad_input), gwt = acc_buffer(grad_weight), go = acc_buffer(grad_offset);
  Tensor gm = g.use_mask ? acc_buffer(grad_mask) : Tensor();

  Args<T, S> a = base_args<T, S>(g, input, offset, mask);
  a.grad = grad.data<T>();
  a.grad_input = gi.data<A>();
  a.grad_weight = gwt.data<A>();
  a.grad_offset = go.data<A>();
  a.grad_mask = g.use_mask ? gm.data<A>() : nullptr;

  {  // data gradient
    const int NCB = (g.Cin_g + Cd::BN - 1) / Cd::BN, NCO = (g.Cout_g + Cd::BK - 1) / Cd::BK;
    const int64_t packed = int64_t(g.groups) * g.taps * NCB * NCO * Cd::BN * Cd::BK;
    Tensor wp = Tensor::empty({packed * int64_t(sizeof(S))}, DType::UInt8, dev, ctx);
    pack_backward_weights<Cd><<<grid_stride_blocks(packed), 256, 0, stream>>>(weight.data<T>(), wp.data<S>(), g,
                                                                              packed);
    TVOPS_CUDA_CHECK(cudaGetLastError());
    a.wpack = wp.data<S>();
    constexpr int smem = std::max<int>(Cd::kTileBytes, Cd::BM * (Cd::BN + 1) * int(sizeof(A)));
    auto kernel = backward_data_kernel<Cd>;
    set_smem(kernel, smem);
    const dim3 grid(unsigned((g.NP + Cd::BM - 1) / Cd::BM), grid_y(int64_t(g.groups) * g.taps * NCB));
    kernel<<<grid, kThreads, smem, stream>>>(a);
    TVOPS_CUDA_CHECK(cudaGetLastError());
  }
  {  // weight gradient
    const int NMB = (g.Cout_g + Cw::BM - 1) / Cw::BM, NCB = (g.Cin_g + Cw::BN - 1) / Cw::BN;
    const int64_t tiles = int64_t(g.groups) * NMB * g.taps * NCB;
    TVOPS_CHECK(int64_t(g.groups) * NMB < (int64_t(1) << 31) && int64_t(g.taps) * NCB < 65536, Value,
                "deform_conv2d: too many weight tiles for the CUDA backward");
    const int64_t want = int64_t(tune.weight_blocks_per_sm) * sm_count(dev.index);
    int64_t splits = std::max<int64_t>(1, (want + tiles - 1) / tiles);
    const int64_t steps = (g.NP + Cw::BK - 1) / Cw::BK;
    splits = std::min<int64_t>({splits, steps, 65535});
    const int64_t per = (steps + splits - 1) / splits;
    splits = (steps + per - 1) / per;
    a.split_pixels = static_cast<int>(per * Cw::BK);
    auto kernel = backward_weight_kernel<Cw>;
    set_smem(kernel, Cw::kTileBytes);
    const dim3 grid(unsigned(g.groups * NMB), unsigned(g.taps * NCB), unsigned(splits));
    kernel<<<grid, kThreads, Cw::kTileBytes, stream>>>(a);
    TVOPS_CUDA_CHECK(cudaGetLastError());
  }
  bias_grad_kernel<T, A><<<g.Cout, kThreads, 0, stream>>>(grad.data<T>(), g.N, g.Cout, g.HWo, res[4].data<T>());
  TVOPS_CUDA_CHECK(cudaGetLastError());
  if constexpr (!direct) {
    auto cast = [&](const Tensor& from, Tensor& to) {
      cast_kernel<T, A><<<grid_stride_blocks(to.numel()), 256, 0, stream>>>(from.data<A>(), to.numel(), to.data<T>());
      TVOPS_CUDA_CHECK(cudaGetLastError());
    };
    cast(gi, grad_input);
    cast(gwt, grad_weight);
    cast(go, grad_offset);
    if (g.use_mask) cast(gm, grad_mask);
  }
}

template <typename F>
decltype(auto) dispatch(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float64: return f(double{});
    case DType::Float16: return f(__half{});
    case DType::BFloat16: return f(__nv_bfloat16{});
    default: return f(float{});
  }
}

// Calls f(Mode) for the dtype's product mode.
template <typename T, typename F>
void with_mode(bool allow_tf32, F&& f) {
  if constexpr (std::is_same_v<T, double>)
    f(std::integral_constant<Mode, Mode::Simt>{});
  else if constexpr (std::is_same_v<T, float>) {
    if (allow_tf32)
      f(std::integral_constant<Mode, Mode::Tf32>{});
    else
      f(std::integral_constant<Mode, Mode::Tf32x3>{});
  } else {
    f(std::integral_constant<Mode, Mode::Half>{});
  }
}

}  // namespace

Tensor deform_conv2d(const Tensor& input, const Tensor& weight, const Tensor& offset, const Tensor& mask,
                     const Tensor& bias, const DeformConvShape& s, bool allow_tf32, const Context& ctx) {
  DeviceGuard guard(input.device().index);
  const Geo g = make_geo(s);
  Tensor out = Tensor::empty({s.batch, s.out_channels, s.out_h, s.out_w}, input.dtype(), input.device(), ctx);
  if (out.numel() == 0) return out;
  const Tuning& tune = tuning_for(compute_capability(input.device().index));
  const bool wide = g.Cout_g > tune.wide_min_channels;
  dispatch(input.dtype(), [&](auto tag) {
    using T = decltype(tag);
    with_mode<T>(allow_tf32, [&](auto mode) {
      constexpr Mode M = decltype(mode)::value;
      if constexpr (M == Mode::Simt) {
        run_forward<Cfg<T, M, 64, 64, 16>>(g, input, weight, offset, mask, bias, out, ctx);
      } else {
        if (wide)
          run_forward<Cfg<T, M, 128, 128, 32>>(g, input, weight, offset, mask, bias, out, ctx);
        else
          run_forward<Cfg<T, M, 128, 64, 32>>(g, input, weight, offset, mask, bias, out, ctx);
      }
    });
  });
  return out;
}

std::vector<Tensor> deform_conv2d_backward(const Tensor& grad, const Tensor& input, const Tensor& weight,
                                           const Tensor& offset, const Tensor& mask, const DeformConvShape& s,
                                           bool allow_tf32, const Context& ctx) {
  DeviceGuard guard(input.device().index);
  const Geo g = make_geo(s);
  const Device dev = input.device();
  std::vector<Tensor> res(5);
  res[0] = Tensor::empty(input.sizes(), input.dtype(), dev, ctx);
  res[1] = Tensor::empty(weight.sizes(), input.dtype(), dev, ctx);
  res[2] = Tensor::empty(offset.sizes(), input.dtype(), dev, ctx);
  if (s.use_mask) res[3] = Tensor::empty(mask.sizes(), input.dtype(), dev, ctx);
  res[4] = Tensor::empty({s.out_channels}, input.dtype(), dev, ctx);
  if (s.out_channels == 0 || s.in_channels == 0) {  // nothing flows: zero gradients
    auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
    for (Tensor& t : res)
      if (t.defined() && t.numel() > 0) TVOPS_CUDA_CHECK(cudaMemsetAsync(t.data_ptr(), 0, t.nbytes(), stream));
    if (s.in_channels == 0 && s.out_channels > 0)  // grad_bias is still the sum of grad
      dispatch(input.dtype(), [&](auto tag) {
        using T = decltype(tag);
        bias_grad_kernel<T, typename AccOf<T>::type><<<g.Cout, kThreads, 0, stream>>>(grad.data<T>(), g.N, g.Cout,
                                                                                       g.HWo, res[4].data<T>());
        TVOPS_CUDA_CHECK(cudaGetLastError());
      });
    return res;
  }
  const Tuning& tune = tuning_for(compute_capability(dev.index));
  const bool wide = g.Cout_g > tune.wide_min_channels && g.Cin_g > tune.wide_min_channels;
  dispatch(input.dtype(), [&](auto tag) {
    using T = decltype(tag);
    with_mode<T>(allow_tf32, [&](auto mode) {
      constexpr Mode M = decltype(mode)::value;
      if constexpr (M == Mode::Simt) {
        using C = Cfg<T, M, 64, 64, 16>;
        run_backward<C, C>(g, grad, input, weight, offset, mask, res, tune, ctx);
      } else {
        using Cd = Cfg<T, M, 128, 64, 32>;
        if (wide)
          run_backward<Cd, Cfg<T, M, 128, 128, 32>>(g, grad, input, weight, offset, mask, res, tune, ctx);
        else
          run_backward<Cd, Cfg<T, M, 64, 64, 32>>(g, grad, input, weight, offset, mask, res, tune, ctx);
      }
    });
  });
  return res;
}

}  // namespace tvops::cuda
