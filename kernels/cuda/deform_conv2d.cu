// CUDA deform_conv2d (DCNv1 / DCNv2), forward and backward, without torchvision's
// im2col buffer (OPS.md §10 has the semantics; deform_conv2d.cuh the tile product and
// the sampler).
//
// The samplers read a group-padded channels-last copy of the input (xin [N, H, W, CP],
// one zero pixel past the images): a lane loads 16 bytes of one corner's channels, so a
// bilinear sample costs four full-sector loads per run of channels, where NCHW costs a
// sector per 4-byte corner. The (pixel, tap, offset group) geometry is computed once
// into a shared-memory table (corner offsets and masked weights) that the lanes of the
// pixel share.
//
// Forward: an implicit GEMM per weight group, M = output pixels (flattened over the
// batch), N = output channels, K = (32-channel chunk, tap), taps inner so a chunk's rows
// stay in L1. A block's table holds the entries of up to 9 taps of its pixels for one
// offset group, so with one offset group and a 3x3 kernel it is made once and every
// chunk reuses it. Each step the block samples [pixels x 32 channels] into shared memory
// while cp.async brings the next step's packed weights; the warps multiply with mma.sync
// (TF32, 3xTF32 for exact float32, bf16 / fp16; float64 on CUDA cores).
//
// Backward: grad is packed into each kernel's A tiles first (operand type, cp.async in the
// kernels; the first packing pass also sums grad_bias), then two kernels:
//  - data: per (tap, block of 64 input channels, pixel tile) the columns gradient
//    W^T . grad is a tile product over the output channels; the tile goes to shared
//    memory, and 16 lanes a pixel walk its channels: float4 col2im atomics into a float32
//    channels-last input gradient, and the grad_offset / grad_mask sums over the channels
//    reduced across the pixel's lanes (one atomic each).
//  - weight: per (output-channel block, tap, input-channel block, slice of pixels)
//    grad . columns^T with the columns sampled again into shared memory; slices sum
//    with atomics (as many slices as fill one wave).
// float16 / bfloat16 accumulate the scattered sums in
// float32 buffers and cast at the end. No host synchronisation; everything runs on the
// caller's stream and allocates through Tensor::empty.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cuda/arch_tuning.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/deform_conv2d.cuh"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/wgmma.cuh"

namespace tvops::cuda {

namespace {

using namespace dcn;

// ---- per-arch choices ----
// Tile shapes are compile-time (Cfg); this build's row of kernels/cuda/arch_tuning.cuh
// (kTune) picks among the instantiated ones and sizes the split of the weight-gradient
// reduction. Every SM target of the build matrix (sm80 and later) has mma.sync with TF32
// and bf16/fp16, ldmatrix and cp.async.

// ---- arguments ----
template <typename T, typename S>
struct Args {
  Geo g;
  const T* in_cl;   // channels-last input [N, H, W, CP]
  const T* offset;  // [N, 2 G taps, Ho, Wo]
  const T* mask;    // [N, G taps, Ho, Wo] or null
  const T* bias;    // [Cout] or null (forward)
  const S* wpack;   // packed weights (forward layout, or the data-gradient layout)
  const S* gpack;   // backward: grad packed as the kernel's A tiles (pack_grad_pixels / _channels)
  T* out;           // forward output
  using A = typename AccOf<T>::type;
  A* grad_in_cl;    // accumulators (zeroed): channels-last input gradient [N, H, W, CP]
  A* grad_offset;
  A* grad_mask;
  A* grad_weight;
  int split_pixels;  // weight gradient: pixels per slice (multiple of BK)
};

// ---- weight packing ----
// Forward: [gw][K chunk of BK channels][tap][part][Cout_g padded to BN][BK], zero padded.
// PARTS = 2 (exact float32 on wgmma): the TF32 big and small parts of each weight, as the
// tensor cores read them from shared memory; else one part, the operand.
template <class C, int PARTS = 1>
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
    const int part = int(r % PARTS);
    r /= PARTS;
    const int tap = int(r % g.taps);
    r /= g.taps;
    const int kc = int(r % NC);
    const int gw = int(r / NC);
    const int c = kc * C::BK + k;
    typename C::A v = 0;
    if (co < g.Cout_g && c < g.Cin_g) v = ld(w + ((int64_t(gw) * g.Cout_g + co) * g.Cin_g + c) * g.taps + tap);
    if constexpr (PARTS == 2) {
      const float big = __uint_as_float(to_tf32(v));
      out[i] = part == 0 ? big : __uint_as_float(to_tf32(v - big));
    } else {
      out[i] = to_operand<C>(v);
    }
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

// ---- the output gradient as A tiles ----
// Both backward kernels multiply the output gradient; it is packed once per kernel into
// their tile order in the operand type (TF32 rounding or half conversion done here), so
// the kernels bring it in with cp.async like the weights.

// Data gradient: [groups][pixel tile of BM][chunk of BK output channels][BM][BK], zero
// padded. Pixels are contiguous in grad and channels in the tiles: 32 x 32 transposes
// through shared memory, kPackTiles of them a block (blockIdx: x kPackTiles * 32 padded
// pixels, y 32 group-local channels, z group), all its loads issued first. The block also
// adds its pixels' sums per channel to grad_bias (bias_acc, zeroed): one atomic per
// channel and block, so grad_bias costs no pass of its own over grad.
constexpr int kPackTiles = 8;
template <class C>
__global__ void pack_grad_pixels(const typename C::T* __restrict__ grad, Geo g, typename C::S* __restrict__ out,
                                 typename C::A* __restrict__ bias_acc) {
  using T = typename C::T;
  using A = typename C::A;
  constexpr int R = 32 / 8;  // rows (channels) a thread loads per tile: blockDim (32, 8)
  __shared__ A tile[32][33];
  const int NPT = (g.NP + C::BM - 1) / C::BM, NCO = (g.Cout_g + C::BK - 1) / C::BK;
  const int c0 = blockIdx.y * 32, gw = blockIdx.z;
  const int pbase = blockIdx.x * (kPackTiles * 32);
  T raw[kPackTiles][R];  // raw until used: a conversion at the load would wait for it
  bool ok[kPackTiles][R];
#pragma unroll
  for (int t = 0; t < kPackTiles; ++t) {
    const int P = pbase + t * 32 + threadIdx.x;
    const int b = P / g.HWo, pix = P - b * g.HWo;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int co = c0 + threadIdx.y + 8 * r;
      ok[t][r] = co < g.Cout_g && P < g.NP;
      raw[t][r] = grad[ok[t][r] ? (int64_t(b) * g.Cout + gw * g.Cout_g + co) * g.HWo + pix : 0];
    }
  }
  A bias[R] = {};
#pragma unroll
  for (int t = 0; t < kPackTiles; ++t) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const A v = ok[t][r] ? to_acc(raw[t][r]) : A(0);
      bias[r] += v;
      tile[threadIdx.y + 8 * r][threadIdx.x] = v;
    }
    __syncthreads();
    for (int j = threadIdx.y; j < 32; j += 8) {
      const int P = pbase + t * 32 + j, co = c0 + threadIdx.x;
      if (P < NPT * C::BM && co < NCO * C::BK) {
        const int pt = P / C::BM, r = P % C::BM, kc = co / C::BK, k = co % C::BK;
        out[((int64_t(gw) * NPT + pt) * NCO + kc) * (C::BM * C::BK) + r * C::BK + k] =
            to_operand<C>(tile[threadIdx.x][j]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {  // a warp a channel: the sum over the block's pixels
    A sum = bias[r];
#pragma unroll
    for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    const int co = c0 + threadIdx.y + 8 * r;
    if (threadIdx.x == 0 && co < g.Cout_g) atomicAdd(bias_acc + gw * g.Cout_g + co, sum);
  }
}

// Weight gradient: [groups][block of BM output channels][chunk of BK pixels][BM][BK], zero
// padded; pixels are contiguous on both sides.
template <class C>
__global__ void pack_grad_channels(const typename C::T* __restrict__ grad, Geo g, typename C::S* __restrict__ out,
                                   int64_t total) {
  const int NMB = (g.Cout_g + C::BM - 1) / C::BM, NPC = (g.NP + C::BK - 1) / C::BK;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int k = int(i % C::BK), row = int(i / C::BK % C::BM);  // powers of two: shifts
    int r = int(i / (C::BK * C::BM));                             // the tile: 32-bit divisions
    const int pc = r % NPC;
    r /= NPC;
    const int mb = r % NMB, gw = r / NMB;
    const int P = pc * C::BK + k, co = mb * C::BM + row;
    typename C::A v = 0;
    if (P < g.NP && co < g.Cout_g) {
      const int b = P / g.HWo, pix = P - b * g.HWo;
      v = ld(grad + (int64_t(b) * g.Cout + gw * g.Cout_g + co) * g.HWo + pix);
    }
    out[i] = to_operand<C>(v);
  }
}

// ---- sample tables ----
// A block samples the channels-last copy `xin` ([N, H, W, CP]; a group's channels at
// gw * CinP, zero padded) through one table entry per (pixel, tap, offset group),
// computed once and shared by the lanes that read the pixel's channels.
template <typename A>
struct Entry {
  int idx;       // b * HW + yl * W + xl: the (yl, xl) corner's pixel in xin
  unsigned ok;   // Sample::ok; 0 for pixels outside the range
  A w[4];        // forward: mask * bilinear weights; backward: bilinear weights
  A ly, lx, m;   // backward only
};

// The forward samplers' entry (forward and weight gradient): the four corners' pixels in
// xin, a corner outside the image (or a pixel out of range) pointing at the zero pixel
// N * HW past the images, so every load is unconditional and no weight meets a non-finite
// value it should not. A corner is kept as pixel * CP / V (xin in 16-byte units, V
// channels each; the host checks that xin has fewer than 2^32 of them), so a lane's load
// address is one multiply-add.
template <typename A>
struct FwdEntry {
  unsigned corner[4];
  A w[4];  // mask * bilinear weight, 0 for dropped corners
};

// The forward's tile product: mma.sync over padded tiles, or (WG, sm90) wgmma over
// 128-byte-swizzled tiles, issued asynchronously so that the next step's gathers overlap
// it. WG needs K steps of one 128-byte row (BK = 32 float32, 64 bfloat16 / float16) and a
// block of two warpgroup tiles, 64 x 128 (64 x 256 and 128 x 128 blocks) or 64 x 64
// (128 x 64 blocks). Exact float32 (3xTF32) keeps both TF32 parts of A and B in shared
// memory and a second set of accumulators for the step: one block an SM.
template <class C> constexpr bool wgmma_fits() {
  return C::M != Mode::Simt && C::BK * int(sizeof(typename C::S)) == 128 &&
         ((C::BM == 64 && C::BN == 256) || (C::BM == 128 && (C::BN == 128 || C::BN == 64)));
}
template <class C, bool WG> constexpr int forward_parts() { return WG && C::M == Mode::Tf32x3 ? 2 : 1; }
template <class C, bool WG> constexpr int forward_blocks_per_sm() { return forward_parts<C, WG>() == 2 ? 1 : 2; }
template <class C, bool WG> constexpr int forward_tile_bytes() {
  // WG: 1024 bytes of alignment slack
  return WG ? 1024 + 2 * forward_parts<C, WG>() * (C::BM + C::BN) * C::BK * int(sizeof(typename C::S))
            : C::kTileBytes;
}

// Taps a forward block's table holds: a 3x3 kernel's where the blocks an SM still fit.
template <class C, bool WG = false> constexpr int forward_table_taps() {
  constexpr int entries = C::BM * int(sizeof(FwdEntry<typename C::A>));
  constexpr int room =
      (kTune.smem_per_sm / forward_blocks_per_sm<C, WG>() - 1024 - forward_tile_bytes<C, WG>()) / entries;
  return room < 2 ? 2 : room > 9 ? 9 : room;
}
template <class C, bool WG = false> constexpr int forward_smem() {
  return forward_tile_bytes<C, WG>() + forward_table_taps<C, WG>() * C::BM * int(sizeof(FwdEntry<typename C::A>));
}
template <class C> constexpr int data_gemm_bytes() {
  using A = typename C::A;
  return std::max<int>(C::kTileBytes, C::BM * (C::BN + 16 / int(sizeof(A))) * int(sizeof(A)));
}
template <class C> constexpr int data_smem() {
  return data_gemm_bytes<C>() + C::BM * int(sizeof(Entry<typename C::A>));
}
template <class C> constexpr int weight_smem() {
  return 2 * C::BM * C::P * int(sizeof(typename C::S)) + 2 * C::BK * (C::BN + 8) * int(sizeof(typename C::S)) +
         2 * C::BK * int(sizeof(FwdEntry<typename C::A>));
}

// The largest tiles this build launches fit its SM target (arch_tuning.cuh).
static_assert(forward_smem<Cfg<float, Mode::Tf32x3, 128, 128, 32>>() <= kTune.smem_per_block_optin &&
                  weight_smem<Cfg<float, Mode::Tf32x3, 128, 128, 32>>() <= kTune.smem_per_block_optin,
              "deform_conv2d: 128-wide tiles exceed the target's shared memory");
static_assert(kTune.dcn_widest_min_channels >= (1 << 30) ||
                  2 * (forward_smem<Cfg<float, Mode::Tf32x3, 64, 256, 32>>() + 1024) <= kTune.smem_per_sm,
              "deform_conv2d: the 64 x 256 forward tile is meant for two blocks an SM");

// A table entry in two steps: start() issues the offset / mask loads, finish() (later,
// after other loads were issued) turns them into the entry.
template <typename T>
struct PendingEntry {
  Pix p;
  bool live;
  SampleLoads<T> l;
};

template <typename T, typename A>
__device__ inline PendingEntry<T> entry_start(const Geo& g, const T* offset, const T* mask, const Pix& p, bool valid,
                                              int tap, int og) {
  PendingEntry<T> q;
  q.p = p;  // out of range: decode() gave pixel 0, so the loads stay in bounds
  q.live = valid && q.p.ok;
  q.l = sample_loads<T>(g, offset, mask, q.p, tap, og);
  return q;
}

template <typename T, typename A = typename AccOf<T>::type>
__device__ inline Entry<A> entry_finish(const Geo& g, const PendingEntry<T>& q, int tap, bool forward) {
  Entry<A> e;
  e.ok = 0;
  e.idx = 0;
  e.w[0] = e.w[1] = e.w[2] = e.w[3] = e.ly = e.lx = e.m = A(0);
  if (!q.live) return e;
  const Sample<A> s = sample_from<T, A>(g, q.p, tap, q.l);
  e.idx = q.p.b * g.HW + s.idx;
  if (forward) {  // torchvision reads nothing outside the strict range
    e.ok = (s.ok & 16u) ? (s.ok & 15u) : 0u;
    e.w[0] = s.m * s.w00;
    e.w[1] = s.m * s.w01;
    e.w[2] = s.m * s.w10;
    e.w[3] = s.m * s.w11;
  } else {
    e.ok = s.ok;
    e.w[0] = s.w00;
    e.w[1] = s.w01;
    e.w[2] = s.w10;
    e.w[3] = s.w11;
    e.ly = s.ly;
    e.lx = s.lx;
    e.m = s.m;
  }
  return e;
}

template <typename T, typename A>
__device__ inline Entry<A> make_entry(const Geo& g, const T* offset, const T* mask, int P, bool valid, int tap, int og,
                                      bool forward) {
  return entry_finish<T, A>(g, entry_start<T, A>(g, offset, mask, decode(g, P), valid, tap, og), tap, forward);
}

template <typename T, typename A = typename AccOf<T>::type>
__device__ inline FwdEntry<A> fwd_entry_finish(const Geo& g, const PendingEntry<T>& q, int tap) {
  FwdEntry<A> e;
  const unsigned units = unsigned(g.CP) / (16 / sizeof(T));  // 16-byte units a pixel
  const unsigned zero = unsigned(g.N * g.HW) * units;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    e.corner[k] = zero;
    e.w[k] = A(0);
  }
  if (!q.live) return e;
  const Sample<A> s = sample_from<T, A>(g, q.p, tap, q.l);
  if (!(s.ok & 16u)) return e;  // torchvision reads nothing outside the strict range
  const int base = q.p.b * g.HW + s.idx;
  const int step[4] = {0, 1, g.W, g.W + 1};
  const A w[4] = {s.w00, s.w01, s.w10, s.w11};
#pragma unroll
  for (int k = 0; k < 4; ++k)
    if (s.ok & (1u << k)) {
      e.corner[k] = unsigned(base + step[k]) * units;
      e.w[k] = s.m * w[k];
    }
  return e;
}

template <typename T, typename A>
__device__ inline FwdEntry<A> make_fwd_entry(const Geo& g, const T* offset, const T* mask, const Pix& p, bool valid,
                                             int tap, int og) {
  return fwd_entry_finish<T, A>(g, entry_start<T, A>(g, offset, mask, p, valid, tap, og), tap);
}

// Masked samples of V channels (at xc: xin plus the lane's channel offset) for NQ pixels
// from their table entries: all 4 * NQ corner loads in flight together.
template <typename T, int V, int NQ>
__device__ inline void gather_entries(const T* __restrict__ xc, const FwdEntry<typename AccOf<T>::type>* e,
                                      const int (&rows)[NQ], bool lane_ok, typename AccOf<T>::type (&val)[NQ][V]) {
  static_assert(V * sizeof(T) == 16, "a corner entry counts 16-byte units");
  using A = typename AccOf<T>::type;
#pragma unroll
  for (int q = 0; q < NQ; ++q)
#pragma unroll
    for (int j = 0; j < V; ++j) val[q][j] = A(0);
  if (!lane_ok) return;  // channels past the group's padded run
  // the lane's base as an opaque 64-bit register: one multiply-add per corner address
  const uint4* base = reinterpret_cast<const uint4*>(xc);
  asm("" : "+l"(base));
  A raw[NQ][4][V];
  A w[NQ][4];
#pragma unroll
  for (int q = 0; q < NQ; ++q) {
    const FwdEntry<A>& en = e[rows[q]];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      w[q][k] = en.w[k];
      load_vec<T, V>(reinterpret_cast<const T*>(base + en.corner[k]), raw[q][k]);
    }
  }
#pragma unroll
  for (int q = 0; q < NQ; ++q)
#pragma unroll
    for (int j = 0; j < V; ++j)
      val[q][j] = w[q][0] * raw[q][0][j] + w[q][1] * raw[q][1][j] + w[q][2] * raw[q][2][j] + w[q][3] * raw[q][3][j];
}

// Whether local channels [c0, c1) of weight group gw lie in one offset group.
__device__ inline bool one_offset_group(const Geo& g, int gw, int c0, int c1) {
  c1 = min(c1, g.Cin_g);
  return c1 <= c0 || (gw * g.Cin_g + c0) / g.cpg == (gw * g.Cin_g + c1 - 1) / g.cpg;
}

// Masked samples of V local channels c .. c + V of group gw for one pixel when the
// channels span offset groups: one channel (and one sample) at a time.
template <typename T, int V>
__device__ inline void sample_slow(const Geo& g, const T* __restrict__ xin, const T* offset, const T* mask,
                                   const Pix& p, bool valid, int gw, int tap, int c,
                                   typename AccOf<T>::type (&val)[V]) {
  using A = typename AccOf<T>::type;
#pragma unroll
  for (int j = 0; j < V; ++j) val[j] = A(0);
  if (c >= g.CinP) return;
  if (!valid || !p.ok) return;
  for (int j = 0; j < V; ++j) {
    const int cl = c + j;
    if (cl >= g.Cin_g) break;
    const Sample<A> s = make_sample(g, offset, mask, p, tap, (gw * g.Cin_g + cl) / g.cpg);
    if (!(s.ok & 16u)) continue;
    const T* q = xin + (int64_t(p.b) * g.HW + s.idx) * g.CP + gw * g.CinP + cl;
    A v00 = (s.ok & 1u) ? ld(q) : A(0), v01 = (s.ok & 2u) ? ld(q + g.CP) : A(0);
    A v10 = (s.ok & 4u) ? ld(q + int64_t(g.W) * g.CP) : A(0);
    A v11 = (s.ok & 8u) ? ld(q + int64_t(g.W + 1) * g.CP) : A(0);
    A v = s.m * bilinear(s, v00, v01, v10, v11);
    // constant indices only: keep val in registers
#pragma unroll
    for (int q2 = 0; q2 < V; ++q2)
      if (q2 == j) val[q2] = v;
  }
}

// ---- forward ----

// A forward block's pixels: a TW x TH patch of one output image where the map is large
// enough, so the samples of its pixels (a compact neighbourhood, shared across the taps)
// stay in L1; else (small maps, where patches would leave rows idle) BM consecutive pixels
// of the flattened batch.
template <class C>
struct forward_tile {
  static constexpr int TW = C::BM >= 128 ? 16 : 8, TH = C::BM / TW;
  static bool fits(const Geo& g) { return g.Wo >= 4 * TW && g.Ho >= 4 * TH; }
  static int64_t blocks(const Geo& g) {
    return int64_t(g.N) * ((g.Ho + TH - 1) / TH) * ((g.Wo + TW - 1) / TW);
  }
};

// Copies a contiguous block of ROWS packed 128-byte operand rows into a 128-byte-swizzled
// tile (wgmma.cuh): a thread copies one chunk column of rows 32 apart, constant offsets.
template <int ROWS, typename S>
__device__ inline void load_tile_async_sw128(S* dst, const S* src) {
  static_assert(ROWS % (kThreads / 8) == 0, "rows");
  constexpr int E = 16 / int(sizeof(S)), ROW = 8 * E;  // elements in 16 bytes, in a row
  const int r = threadIdx.x / 8, q = threadIdx.x % 8;
  S* d = dst + wgmma::sw128<sizeof(S)>(r, q * E);
  const S* s = src + r * ROW + q * E;
#pragma unroll
  for (int j = 0; j < ROWS / (kThreads / 8); ++j)
    cp_async16(d + j * (kThreads / 8) * ROW, s + j * (kThreads / 8) * ROW);
}

// The block's tile product on wgmma (wgmma_fits): warpgroup wg takes the 64 x N tile at
// rows (BM = 128) or columns (BN = 256) 64 wg / 128 wg, four instructions of 32 bytes of k
// a row. Issued and committed, not waited for. TF32: d += A . B^T. Exact float32 (A and B
// each [big part][small part]): d = As . Bb^T + Ab . Bs^T + Ab . Bb^T, the step's sum alone,
// which the caller adds to its running sums once done: the tensor cores add into their
// accumulator without rounding to nearest, an error that would grow with K.
template <class C>
__device__ inline void issue_wgmma_product(const typename C::S* sA, const typename C::S* sB,
                                           float (&d)[C::kAcc]) {
  using S = typename C::S;
  constexpr int ROW = C::BK, KSTEP = 32 / int(sizeof(S));  // elements in a row, in an instruction
  constexpr int N = C::BN == 64 ? 64 : 128;                // the warpgroup tile's columns
  static_assert(C::kAcc == N / 2, "accumulators");
  const int wg = threadIdx.x / 128;
  const S* a = sA + (C::BM == 128 ? wg * 64 * ROW : 0);
  const S* b = sB + (C::BN == 256 ? wg * 128 * ROW : 0);
  auto desc = [](const S* t) { return wgmma::desc_sw128(t); };
  wgmma::fence_operands(d);
  wgmma::arrive();
#pragma unroll
  for (int k = 0; k < ROW; k += KSTEP) {
    if constexpr (C::M == Mode::Tf32x3) {
      const S *as = a + C::BM * ROW, *bs = b + C::BN * ROW;
      wgmma::mma_tf32<N>(d, desc(as + k), desc(b + k), k > 0);
      wgmma::mma_tf32<N>(d, desc(a + k), desc(bs + k));
    }
    if constexpr (C::M == Mode::Half && std::is_same_v<S, __nv_bfloat16>)
      wgmma::mma_bf16<N>(d, desc(a + k), desc(b + k));
    else if constexpr (C::M == Mode::Half)
      wgmma::mma_f16<N>(d, desc(a + k), desc(b + k));
    else
      wgmma::mma_tf32<N>(d, desc(a + k), desc(b + k));
  }
  wgmma::commit();
  wgmma::fence_operands(d);
}

// acc += step, once the step's product is done (exact float32 on wgmma).
template <int N>
__device__ inline void add_step(float (&acc)[N], float (&step)[N]) {
  wgmma::fence_operands(step);
#pragma unroll
  for (int e = 0; e < N; ++e) acc[e] += step[e];
}

// Row and column of accumulator e of this thread in the wgmma layout.
template <class C>
__device__ inline void acc_coord_wgmma(int e, int& row, int& col) {
  const int wg = threadIdx.x / 128, w = threadIdx.x / 32 % 4, lane = threadIdx.x % 32, q = e % 4;
  row = (C::BM == 128 ? wg * 64 : 0) + w * 16 + lane / 4 + (q >= 2 ? 8 : 0);
  col = (C::BN == 256 ? wg * 128 : 0) + e / 4 * 8 + 2 * (lane % 4) + (q & 1);
}

// Tiled: the block's pixels are a forward_tile patch (else BM consecutive pixels); a
// template argument, as a run-time choice costs the steps registers. WG: the product on
// wgmma (sm90), asynchronous: the warps gather step k + 1 while the tensor cores multiply
// step k, where mma.sync makes each warp wait for its own products.
template <class C, bool Tiled, bool WG = false>
__global__ void __launch_bounds__(kThreads, (forward_blocks_per_sm<C, WG>()))
    forward_kernel(Args<typename C::T, typename C::S> a) {
  using T = typename C::T;
  using S = typename C::S;
  using A = typename C::A;
  static_assert(!WG || wgmma_fits<C>(), "wgmma tiles");
  extern __shared__ __align__(16) unsigned char smem_raw[];
  constexpr int TT = forward_table_taps<C, WG>();
  constexpr int RP = WG ? C::BK : C::P;          // tile row pitch (elements)
  constexpr int PARTS = forward_parts<C, WG>();  // 2: the TF32 big and small parts
  unsigned char* tiles = smem_raw;
  if constexpr (WG) tiles += (1024 - __cvta_generic_to_shared(smem_raw) % 1024) % 1024;  // swizzle alignment
  S* sA = reinterpret_cast<S*>(tiles);   // [2][PARTS][BM][RP]
  S* sB = sA + 2 * PARTS * C::BM * RP;   // [2][PARTS][BN][RP]
  FwdEntry<A>* table = reinterpret_cast<FwdEntry<A>*>(smem_raw + forward_tile_bytes<C, WG>());  // [TT][BM]
  const Geo& g = a.g;
  constexpr int V = 16 / int(sizeof(T));  // channels a lane reads at once
  constexpr int L = C::BK / V;            // lanes a pixel
  constexpr int PP = kThreads / L;        // pixels a pass
  constexpr int PASSES = C::BM / PP;      // pixels a lane samples a step
  static_assert(L <= 32 && 32 % L == 0 && C::BM % PP == 0, "sampling layout");
  const int NC = (g.Cin_g + C::BK - 1) / C::BK;
  const int NB = (g.Cout_g + C::BN - 1) / C::BN;
  const int CoutP = NB * C::BN;
  // Samples of channels k .. k + V of A-tile row `row`: the operands (or both TF32 parts).
  auto store_a = [](S* buf, int row, int k, const A(&val)[V]) {
    S sv[V];
    if constexpr (PARTS == 2) {
      S small[V];
#pragma unroll
      for (int j = 0; j < V; ++j) {
        sv[j] = __uint_as_float(to_tf32(val[j]));
        small[j] = __uint_as_float(to_tf32(val[j] - sv[j]));
      }
      store_run<S, V>(buf + C::BM * RP + wgmma::sw128<sizeof(S)>(row, k), small);
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) sv[j] = to_operand<C>(val[j]);
    }
    store_run<S, V>(WG ? buf + wgmma::sw128<sizeof(S)>(row, k) : buf + row * C::P + k, sv);
  };
  auto load_weights = [&](S* dst, const S* src) {
    if constexpr (WG) {
#pragma unroll
      for (int p = 0; p < PARTS; ++p) load_tile_async_sw128<C::BN>(dst + p * C::BN * RP, src + p * CoutP * C::BK);
    } else {
      load_tile_async<C, C::BN>(dst, src);
    }
  };
  const int KT = g.taps * NC;  // K steps: channel chunk outer, tap inner (the chunk's rows stay in L1)
  // The block's pixels: row r is pixel(origin, r). A patch's origin (image, first row and
  // column) waits in shared memory, read where needed: registers are scarce in the steps.
  using Tile = forward_tile<C>;
  __shared__ int patch[3];
  if (Tiled && threadIdx.x == 0) {
    const int ntx = (g.Wo + Tile::TW - 1) / Tile::TW, nty = (g.Ho + Tile::TH - 1) / Tile::TH;
    const int b = blockIdx.x / (ntx * nty), t = blockIdx.x - b * ntx * nty, ty = t / ntx;
    patch[0] = b;
    patch[1] = ty * Tile::TH;
    patch[2] = (t - ty * ntx) * Tile::TW;
  }
  __syncthreads();
  auto origin = [&](int (&o)[3]) {
    const volatile int* v = patch;  // volatile: no copy held in registers across the steps
    for (int i = 0; i < 3; ++i) o[i] = Tiled ? v[i] : 0;
  };
  auto pixel = [&](const int (&o)[3], int r) -> Pix {
    if (!Tiled) return decode(g, blockIdx.x * C::BM + r);
    Pix p;
    p.oy = o[1] + r / Tile::TW;
    p.ox = o[2] + r % Tile::TW;
    p.ok = p.oy < g.Ho && p.ox < g.Wo;
    if (!p.ok) p.oy = p.ox = 0;  // like decode: the loads of a pixel out of range stay in bounds
    p.b = o[0];
    p.pix = p.oy * g.Wo + p.ox;
    return p;
  };
  const int lc = threadIdx.x % L * V;
  for (int yb = blockIdx.y; yb < g.groups * NB; yb += gridDim.y) {
    const int gw = yb / NB, nb = yb % NB;
    const int64_t chunk_stride = int64_t(PARTS) * CoutP * C::BK;
    const S* wblk = a.wpack + gw * KT * chunk_stride + nb * C::BN * C::BK;
    A acc[C::kAcc];
#pragma unroll
    for (int e = 0; e < C::kAcc; ++e) acc[e] = 0;
    // exact float32 on wgmma: the product of the step in flight, added to acc once done
    A step[PARTS == 2 ? C::kAcc : 1];
#pragma unroll
    for (int e = 0; e < int(sizeof(step) / sizeof(A)); ++e) step[e] = 0;
    load_weights(sB, wblk);
    cp_async_commit();
    int kt = 0;                         // K step
    int table_og = -1, table_t0 = -1;  // what the table holds
    for (int kc = 0; kc < NC; ++kc) {
      const int c0 = kc * C::BK;
      const bool uniform = one_offset_group(g, gw, c0, c0 + C::BK);
      const int og = (gw * g.Cin_g + c0) / g.cpg;
      for (int t0 = 0; t0 < g.taps; t0 += TT) {
        const int nt = min(TT, g.taps - t0);
        if (uniform && (og != table_og || t0 != table_t0)) {
          // the entries of taps t0 .. t0 + nt for the block's pixels, computed once and used
          // by every chunk of the same offset group (all of them for one offset group and a
          // 3x3 kernel). The table is free: the steps before read it ahead of their barrier.
          table_og = og;
          table_t0 = t0;
          int o[3];
          origin(o);
#pragma unroll 1
          for (int i0 = 0; i0 < nt * C::BM; i0 += 2 * kThreads) {  // two entries a thread in flight
            PendingEntry<T> pend[2];
#pragma unroll
            for (int j = 0; j < 2; ++j) {
              const int i = i0 + j * kThreads + threadIdx.x;
              const bool live = i < nt * C::BM;
              const int e = live ? i : 0;  // a spare thread reads entry 0's offsets: in bounds
              pend[j] = entry_start<T, A>(g, a.offset, a.mask, pixel(o, e % C::BM), live, t0 + e / C::BM, og);
            }
#pragma unroll
            for (int j = 0; j < 2; ++j) {
              const int i = i0 + j * kThreads + threadIdx.x;
              if (i < nt * C::BM) table[i] = fwd_entry_finish(g, pend[j], t0 + i / C::BM);
            }
          }
          __syncthreads();
        }
#pragma unroll 1
        for (int t = 0; t < nt; ++t, ++kt) {
          S* a_buf = sA + (kt & 1) * PARTS * C::BM * RP;
          if (uniform) {
            const FwdEntry<A>* tab = table + t * C::BM;
            constexpr int NQ = PASSES < 2 ? PASSES : 2;  // pixels whose loads fly together
#pragma unroll
            for (int q0 = 0; q0 < PASSES; q0 += NQ) {
              int rows[NQ];
#pragma unroll
              for (int i = 0; i < NQ; ++i) rows[i] = (q0 + i) * PP + threadIdx.x / L;
              A val[NQ][V];
              gather_entries<T, V, NQ>(a.in_cl + gw * g.CinP + c0 + lc, tab, rows, c0 + lc < g.CinP, val);
#pragma unroll
              for (int i = 0; i < NQ; ++i) store_a(a_buf, rows[i], lc, val[i]);
            }
          } else {
#pragma unroll 1
            for (int q = 0; q < C::BM / PP; ++q) {
              const int pr = q * PP + threadIdx.x / L;
              A val[V];
              int o[3];
              origin(o);
              sample_slow<T, V>(g, a.in_cl, a.offset, a.mask, pixel(o, pr), true, gw, t0 + t, c0 + lc, val);
              store_a(a_buf, pr, lc, val);
            }
          }
          if constexpr (WG) {
            wgmma::wait<0>();  // step kt - 1's product is done with its tiles
            if constexpr (PARTS == 2) add_step(acc, step);
          }
          cp_async_wait_all();
          if constexpr (WG) wgmma::fence_smem_for_async();
          __syncthreads();
          if (kt + 1 < KT) {
            load_weights(sB + ((kt + 1) & 1) * PARTS * C::BN * RP, wblk + (kt + 1) * chunk_stride);
            cp_async_commit();
          }
          S* b_buf = sB + (kt & 1) * PARTS * C::BN * RP;
          if constexpr (WG && PARTS == 2)
            issue_wgmma_product<C>(a_buf, b_buf, step);
          else if constexpr (WG)
            issue_wgmma_product<C>(a_buf, b_buf, acc);
          else
            tile_product<C>(a_buf, b_buf, acc);
        }
      }
    }
    if constexpr (WG) {
      wgmma::wait<0>();
      if constexpr (PARTS == 2) add_step(acc, step);
      wgmma::fence_operands(acc);
    }
    int o[3];
    origin(o);
#pragma unroll
    for (int e = 0; e < C::kAcc; ++e) {
      int row, col;
      if constexpr (WG)
        acc_coord_wgmma<C>(e, row, col);
      else
        acc_coord<C>(e, row, col);
      const int co = nb * C::BN + col;
      const Pix q = pixel(o, row);
      if (q.ok && co < g.Cout_g) {
        const int cog = gw * g.Cout_g + co;
        A v = acc[e];
        if (a.bias) v += ld(a.bias + cog);
        a.out[(int64_t(q.b) * g.Cout + cog) * g.HWo + q.pix] = from_acc<T>(v);
      }
    }
    __syncthreads();  // the next group's prologue reuses the buffers and the table
  }
}

// ---- backward: data (grad_input, grad_offset, grad_mask) ----

template <class C>
__global__ void __launch_bounds__(kThreads, 2) backward_data_kernel(Args<typename C::T, typename C::S> a) {
  using T = typename C::T;
  using S = typename C::S;
  using A = typename C::A;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  constexpr int GP = C::BN + 16 / int(sizeof(A));  // columns-gradient pitch (rows 16-byte aligned)
  constexpr int kGemmBytes = data_gemm_bytes<C>();
  S* sA = reinterpret_cast<S*>(smem_raw);  // [2][BM][P]: grad, pixels x output channels
  S* sB = sA + 2 * C::BM * C::P;           // [2][BN][P]: weights, input channels x output channels
  A* sG = reinterpret_cast<A*>(smem_raw);  // after the product: [BM][GP] columns gradient
  Entry<A>* table = reinterpret_cast<Entry<A>*>(smem_raw + kGemmBytes);  // [BM]
  const Geo& g = a.g;
  constexpr int V = 16 / int(sizeof(A));  // channels a lane scatters at once
  constexpr int L = C::BN / V, PP = kThreads / L;
  static_assert(L <= 32 && 32 % L == 0 && C::BM % PP == 0, "scatter layout");
  const int NCB = (g.Cin_g + C::BN - 1) / C::BN;
  const int NCO = (g.Cout_g + C::BK - 1) / C::BK;
  const int NPT = (g.NP + C::BM - 1) / C::BM;
  // blockIdx.x: (group, tap, channel block), fastest, so the blocks in flight share a
  // pixel tile: its grad rows, input rows and gradient rows stay in L2
  const int yb = blockIdx.x;
  const int gw = yb / (g.taps * NCB), tap = yb / NCB % g.taps, cb = yb % NCB;
  for (int pt = blockIdx.y; pt < NPT; pt += gridDim.y) {
    const int P0 = pt * C::BM;
    const bool uniform = one_offset_group(g, gw, cb * C::BN, cb * C::BN + C::BN);
    const int og = (gw * g.Cin_g + cb * C::BN) / g.cpg;
    if (uniform && threadIdx.x < C::BM)
      table[threadIdx.x] = make_entry<T, A>(g, a.offset, a.mask, P0 + threadIdx.x, true, tap, og, false);
    const S* wblk = a.wpack + (int64_t(gw * g.taps + tap) * NCB + cb) * NCO * C::BN * C::BK;
    const S* gblk = a.gpack + (int64_t(gw) * NPT + pt) * NCO * C::BM * C::BK;  // packed grad tiles
    A acc[C::kAcc];
#pragma unroll
    for (int e = 0; e < C::kAcc; ++e) acc[e] = 0;
    load_tile_async<C, C::BM>(sA, gblk);
    load_tile_async<C, C::BN>(sB, wblk);
    cp_async_commit();
    for (int kt = 0; kt < NCO; ++kt) {
      cp_async_wait_all();
      __syncthreads();
      if (kt + 1 < NCO) {  // the buffers the product of step kt - 1 read
        load_tile_async<C, C::BM>(sA + ((kt + 1) & 1) * C::BM * C::P, gblk + (kt + 1) * C::BM * C::BK);
        load_tile_async<C, C::BN>(sB + ((kt + 1) & 1) * C::BN * C::P, wblk + (kt + 1) * C::BN * C::BK);
        cp_async_commit();
      }
      tile_product<C>(sA + (kt & 1) * C::BM * C::P, sB + (kt & 1) * C::BN * C::P, acc);
    }
    __syncthreads();  // the product is done with the tiles
#pragma unroll
    for (int e = 0; e < C::kAcc; ++e) {
      int r, c;
      acc_coord<C>(e, r, c);
      sG[r * GP + c] = acc[e];
    }
    __syncthreads();
    // Scatter: L lanes a pixel, V channels a lane.
    const int lc = threadIdx.x % L * V, cl = cb * C::BN + lc;
    const int64_t cbase = int64_t(gw) * g.CinP + cl;
    // two pixels in flight for 32-bit data (16-bit data, converted after the load, spills at two)
#pragma unroll(sizeof(T) >= 4 ? 2 : 1)
    for (int q = 0; q < C::BM / PP; ++q) {
      const int pr = q * PP + threadIdx.x / L;
      const int P = P0 + pr;
      A gc[V];
#pragma unroll
      for (int j = 0; j < V; ++j) gc[j] = sG[pr * GP + lc + j];
      if (uniform) {
        const Entry<A> e = table[pr];
        A gy = 0, gx = 0, gm = 0;
        if (e.ok != 0 && cl < g.CinP) {
          const int64_t base = int64_t(e.idx) * g.CP + cbase;
          const int64_t off[4] = {0, g.CP, int64_t(g.W) * g.CP, int64_t(g.W + 1) * g.CP};
          A v[4][V];
#pragma unroll
          for (int k = 0; k < 4; ++k) {  // all four in flight; a corner outside reads xin[0], then 0
            load_vec<T, V>(a.in_cl + ((e.ok >> k) & 1u ? base + off[k] : 0), v[k]);
#pragma unroll
            for (int j = 0; j < V; ++j) v[k][j] = (e.ok >> k) & 1u ? v[k][j] : A(0);
          }
          A mg[V];
#pragma unroll
          for (int j = 0; j < V; ++j) {
            mg[j] = e.m * gc[j];
            // torchvision's get_coordinate_weight (corners outside the image read as 0)
            gy += mg[j] * (e.lx * (v[3][j] - v[1][j]) + (A(1) - e.lx) * (v[2][j] - v[0][j]));
            gx += mg[j] * (e.ly * (v[3][j] - v[2][j]) + (A(1) - e.ly) * (v[1][j] - v[0][j]));
            gm += gc[j] * (e.w[0] * v[0][j] + e.w[1] * v[1][j] + e.w[2] * v[2][j] + e.w[3] * v[3][j]);
          }
          if (e.ok & 16u) {
#pragma unroll
            for (int k = 0; k < 4; ++k) {
              if (e.ok & (1u << k)) {
                A add[V];
#pragma unroll
                for (int j = 0; j < V; ++j) add[j] = e.w[k] * mg[j];
                atomic_add_vec<A, V>(a.grad_in_cl + base + off[k], add);
              }
            }
          }
        }
        // the pixel's sums over its channels: L lanes, then one atomic each
#pragma unroll
        for (int o = L / 2; o > 0; o /= 2) {
          gy += __shfl_xor_sync(0xffffffffu, gy, o);
          gx += __shfl_xor_sync(0xffffffffu, gx, o);
          gm += __shfl_xor_sync(0xffffffffu, gm, o);
        }
        if (threadIdx.x % L == 0 && e.ok != 0) {
          const Pix p = decode(g, P);
          const int64_t ob = ((int64_t(p.b) * g.G + og) * 2 * g.taps + 2 * tap) * g.HWo + p.pix;
          atomicAdd(a.grad_offset + ob, gy);
          atomicAdd(a.grad_offset + ob + g.HWo, gx);
          if (g.use_mask) atomicAdd(a.grad_mask + ((int64_t(p.b) * g.G + og) * g.taps + tap) * g.HWo + p.pix, gm);
        }
      } else if (P < g.NP) {  // the block's channels span offset groups: one channel at a time
        const Pix p = decode(g, P);
        for (int j = 0; j < V; ++j) {
          const int c = cl + j;
          if (c >= g.Cin_g) break;
          const int ogc = (gw * g.Cin_g + c) / g.cpg;
          const Sample<A> s = make_sample(g, a.offset, a.mask, p, tap, ogc);
          if (s.ok == 0) continue;
          const int64_t base = (int64_t(p.b) * g.HW + s.idx) * g.CP + int64_t(gw) * g.CinP + c;
          const int64_t off[4] = {0, g.CP, int64_t(g.W) * g.CP, int64_t(g.W + 1) * g.CP};
          A v[4];
#pragma unroll
          for (int k = 0; k < 4; ++k) v[k] = (s.ok & (1u << k)) ? ld(a.in_cl + base + off[k]) : A(0);
          const A mgj = s.m * gc[j];
          if (s.ok & 16u) {
            const A w[4] = {s.w00, s.w01, s.w10, s.w11};
#pragma unroll
            for (int k = 0; k < 4; ++k)
              if (s.ok & (1u << k)) atomicAdd(a.grad_in_cl + base + off[k], w[k] * mgj);
          }
          const int64_t ob = ((int64_t(p.b) * g.G + ogc) * 2 * g.taps + 2 * tap) * g.HWo + p.pix;
          atomicAdd(a.grad_offset + ob, mgj * (s.lx * (v[3] - v[1]) + (A(1) - s.lx) * (v[2] - v[0])));
          atomicAdd(a.grad_offset + ob + g.HWo, mgj * (s.ly * (v[3] - v[2]) + (A(1) - s.ly) * (v[1] - v[0])));
          if (g.use_mask)
            atomicAdd(a.grad_mask + ((int64_t(p.b) * g.G + ogc) * g.taps + tap) * g.HWo + p.pix,
                      gc[j] * bilinear(s, v[0], v[1], v[2], v[3]));
        }
      }
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
  constexpr int PB = C::BN + 8;  // columns tile: [BK pixels][PB], channels contiguous
  extern __shared__ __align__(16) unsigned char smem_raw[];
  S* sA = reinterpret_cast<S*>(smem_raw);  // [2][BM][P]: grad, output channels x pixels
  S* sB = sA + 2 * C::BM * C::P;           // [2][BK][PB]: columns, pixels x input channels
  FwdEntry<A>* table = reinterpret_cast<FwdEntry<A>*>(sB + 2 * C::BK * PB);  // [2][BK]
  const Geo& g = a.g;
  constexpr int V = 16 / int(sizeof(T));
  constexpr int L = C::BN / V, PP = kThreads / L;
  static_assert(L <= 32 && 32 % L == 0 && C::BK % PP == 0, "sampling layout");
  const int NMB = (g.Cout_g + C::BM - 1) / C::BM, NCB = (g.Cin_g + C::BN - 1) / C::BN;
  const int NPC = (g.NP + C::BK - 1) / C::BK;
  const int gw = blockIdx.x / NMB, mb = blockIdx.x % NMB;
  const int tap = blockIdx.y / NCB, cb = blockIdx.y % NCB;
  const int p_begin = blockIdx.z * a.split_pixels;
  const int p_end = min(g.NP, p_begin + a.split_pixels);
  const bool uniform = one_offset_group(g, gw, cb * C::BN, cb * C::BN + C::BN);
  const int og = (gw * g.Cin_g + cb * C::BN) / g.cpg;
  const int lc = threadIdx.x % L * V;
  auto fill_table = [&](int it) {
    const int P = p_begin + it * C::BK + threadIdx.x;
    if (uniform && threadIdx.x < C::BK)
      table[(it & 1) * C::BK + threadIdx.x] = make_fwd_entry<T, A>(g, a.offset, a.mask, decode(g, P), P < p_end, tap, og);
  };
  A acc[C::kAcc];
#pragma unroll
  for (int e = 0; e < C::kAcc; ++e) acc[e] = 0;
  // packed grad tiles [chunk of BK pixels][BM][BK] (the slices start at chunk boundaries)
  const S* gblk = a.gpack + (int64_t(gw) * NMB + mb) * NPC * C::BM * C::BK;
  load_tile_async<C, C::BM>(sA, gblk + int64_t(p_begin / C::BK) * C::BM * C::BK);
  cp_async_commit();
  fill_table(0);
  __syncthreads();
  int it = 0;
  for (int p0 = p_begin; p0 < p_end; p0 += C::BK, ++it) {
    S* a_buf = sA + (it & 1) * C::BM * C::P;
    S* b_buf = sB + (it & 1) * C::BK * PB;
    // the next step's table entries: their loads overlap this step's gathers
    const bool fill = uniform && threadIdx.x < C::BK && p0 + C::BK < p_end;
    PendingEntry<T> pend{};
    if (fill) {
      const int Pn = p0 + C::BK + threadIdx.x;
      pend = entry_start<T, A>(g, a.offset, a.mask, decode(g, Pn), Pn < p_end, tap, og);
    }
    // columns: L lanes a pixel, V channels a lane
    const FwdEntry<A>* tab = table + (it & 1) * C::BK;
    const int c0 = cb * C::BN + lc;
    if (uniform) {
      constexpr int PASSES = C::BK / PP, NQ = PASSES < 2 ? PASSES : 2;
#pragma unroll
      for (int q0 = 0; q0 < PASSES; q0 += NQ) {
        int rows[NQ];
#pragma unroll
        for (int i = 0; i < NQ; ++i) rows[i] = (q0 + i) * PP + threadIdx.x / L;
        A val[NQ][V];
        gather_entries<T, V, NQ>(a.in_cl + gw * g.CinP + c0, tab, rows, c0 < g.CinP, val);
#pragma unroll
        for (int i = 0; i < NQ; ++i) {
          S sv[V];
#pragma unroll
          for (int j = 0; j < V; ++j) sv[j] = to_operand<C>(val[i][j]);
          store_run<S, V>(b_buf + rows[i] * PB + lc, sv);
        }
      }
    } else {
#pragma unroll 1
      for (int q = 0; q < C::BK / PP; ++q) {
        const int pr = q * PP + threadIdx.x / L;
        A val[V];
        sample_slow<T, V>(g, a.in_cl, a.offset, a.mask, decode(g, p0 + pr), p0 + pr < p_end, gw, tap, c0, val);
        S sv[V];
#pragma unroll
        for (int j = 0; j < V; ++j) sv[j] = to_operand<C>(val[j]);
        store_run<S, V>(b_buf + pr * PB + lc, sv);
      }
    }
    if (fill) table[((it + 1) & 1) * C::BK + threadIdx.x] = fwd_entry_finish(g, pend, tap);
    cp_async_wait_all();
    __syncthreads();
    if (p0 + C::BK < p_end) {  // the buffer the product of step it - 1 read
      load_tile_async<C, C::BM>(sA + ((it + 1) & 1) * C::BM * C::P,
                                gblk + int64_t(p0 / C::BK + 1) * C::BM * C::BK);
      cp_async_commit();
    }
    tile_product<C, PB>(a_buf, b_buf, acc);
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

// ---- layout changes ----

// x [N, Cin, H, W] -> xin [N, H, W, groups * CinP], each group's channels zero padded.
// A block (32 x 8 threads) moves 64 pixels x 32 channels of an image a pass, eight loads
// in flight a thread.
template <typename T>
__global__ void to_channels_last(const T* __restrict__ x, Geo g, T* __restrict__ out) {
  __shared__ T tile[32][65];
  const int p0 = blockIdx.x * 64, c0 = blockIdx.y * 32;
  const T zero = from_acc<T>(typename AccOf<T>::type(0));
  if (blockIdx.x == 0 && blockIdx.z == 0 && threadIdx.y == 0 && c0 + int(threadIdx.x) < g.CP)
    out[int64_t(g.N) * g.HW * g.CP + c0 + threadIdx.x] = zero;  // the zero pixel past the images
  for (int n = blockIdx.z; n < g.N; n += gridDim.z) {
    T v[4][2];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int co = c0 + threadIdx.y + 8 * j;
      const int gw = co / g.CinP, cl = co - gw * g.CinP;
      const bool ok = co < g.CP && cl < g.Cin_g;
      const T* src = x + (int64_t(n) * g.Cin + gw * g.Cin_g + cl) * g.HW;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int p = p0 + threadIdx.x + 32 * h;
        v[j][h] = ok && p < g.HW ? src[p] : zero;
      }
    }
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) tile[threadIdx.y + 8 * j][threadIdx.x + 32 * h] = v[j][h];
    __syncthreads();
    const int co = c0 + threadIdx.x;
#pragma unroll
    for (int m = 0; m < 8; ++m) {
      const int p = p0 + threadIdx.y + 8 * m;
      if (co < g.CP && p < g.HW) out[(int64_t(n) * g.HW + p) * g.CP + co] = tile[threadIdx.x][threadIdx.y + 8 * m];
    }
    __syncthreads();
  }
}

// The channels-last input gradient sums (A) -> grad_input [N, Cin, H, W] (T), 64 pixels x
// 32 channels a pass as to_channels_last.
template <typename T, typename A>
__global__ void from_channels_last(const A* __restrict__ in, Geo g, T* __restrict__ out) {
  __shared__ A tile[64][33];
  const int p0 = blockIdx.x * 64, c0 = blockIdx.y * 32;
  const int c = c0 + threadIdx.x, gw = c / g.Cin_g, cl = c - gw * g.Cin_g;
  for (int n = blockIdx.z; n < g.N; n += gridDim.z) {
    A v[8];
#pragma unroll
    for (int m = 0; m < 8; ++m) {
      const int p = p0 + threadIdx.y + 8 * m;
      v[m] = c < g.Cin && p < g.HW ? in[(int64_t(n) * g.HW + p) * g.CP + gw * g.CinP + cl] : A(0);
    }
#pragma unroll
    for (int m = 0; m < 8; ++m) tile[threadIdx.y + 8 * m][threadIdx.x] = v[m];
    __syncthreads();
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int co = c0 + threadIdx.y + 8 * j;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int p = p0 + threadIdx.x + 32 * h;
        if (co < g.Cin && p < g.HW)
          out[(int64_t(n) * g.Cin + co) * g.HW + p] = from_acc<T>(tile[threadIdx.x + 32 * h][threadIdx.y + 8 * j]);
      }
    }
    __syncthreads();
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

// The backward's sums start at zero: one launch clears all of them (a memset each cost
// a launch each on the critical path of a small call).
constexpr int kMaxZeroed = 6;
struct ZeroList {
  unsigned char* p[kMaxZeroed];
  int64_t bytes[kMaxZeroed];  // multiples of 4; p 16-byte aligned
  int count;
};

__global__ void zero_buffers(ZeroList z) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x, first = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
#pragma unroll  // constant indices: the list stays in parameter space, not a local copy a thread
  for (int b = 0; b < kMaxZeroed; ++b) {
    if (b >= z.count) break;
    const int64_t n16 = z.bytes[b] / 16;
    uint4* v = reinterpret_cast<uint4*>(z.p[b]);
    for (int64_t i = first; i < n16; i += stride) v[i] = make_uint4(0u, 0u, 0u, 0u);
    const int64_t words = (z.bytes[b] - n16 * 16) / 4;  // a tail of at most 3 words
    if (first < words) reinterpret_cast<unsigned*>(z.p[b] + n16 * 16)[first] = 0u;
  }
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
  fits(s.batch * s.height * s.width + s.width + 1, "batch * height * width");
  // coordinates reach at most (out - 1) * stride + (k - 1) * dilation before the offset
  fits((s.out_h - 1) * s.stride_h + (s.kernel_h - 1) * s.dilation_h + 1, "sampled rows");
  fits((s.out_w - 1) * s.stride_w + (s.kernel_w - 1) * s.dilation_w + 1, "sampled columns");
  g.use_mask = s.use_mask;
  return g;
}

unsigned grid_y(int64_t n) { return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(n, 1), 65535)); }

// The channels-last, group-padded copy of the input that the samplers read (its
// geometry goes into g: CinP, CP).
template <typename T>
Tensor channels_last_input(Geo& g, const Tensor& input, const Context& ctx) {
  constexpr int V = 16 / int(sizeof(T));
  g.CinP = (g.Cin_g + V - 1) / V * V;
  TVOPS_CHECK(int64_t(g.groups) * g.CinP < (int64_t(1) << 31), Value, "deform_conv2d: too many channels");
  g.CP = g.groups * g.CinP;
  TVOPS_CHECK((int64_t(g.N) * g.HW + 1) * (g.CP / V) < (int64_t(1) << 32), Value,
              "deform_conv2d: the input is too large for the CUDA samplers' 32-bit corner offsets");
  // one zero pixel past the images (written by the copy): the forward samplers point
  // dropped corners at it
  Tensor xin = Tensor::empty({(int64_t(g.N) * g.HW + 1) * g.CP}, input.dtype(), input.device(), ctx);
  const dim3 grid(unsigned((g.HW + 63) / 64), unsigned((g.CP + 31) / 32), grid_y(g.N));
  TVOPS_CHECK((g.CP + 31) / 32 < 65536, Value, "deform_conv2d: too many channels for the CUDA layout copy");
  to_channels_last<T><<<grid, dim3(32, 8), 0, static_cast<cudaStream_t>(ctx.cuda_stream)>>>(input.data<T>(), g,
                                                                                               xin.data<T>());
  TVOPS_CUDA_CHECK(cudaGetLastError());
  return xin;
}

template <typename T, typename S>
Args<T, S> base_args(const Geo& g, const Tensor& xin, const Tensor& offset, const Tensor& mask) {
  Args<T, S> a{};
  a.g = g;
  a.in_cl = xin.data<T>();
  a.offset = offset.data<T>();
  a.mask = g.use_mask ? mask.data<T>() : nullptr;
  return a;
}

// wgmma exists on compute capability 9.0 only (sm_90a code); TVOPS_DCN_WGMMA=0 keeps
// mma.sync there too (for comparisons and tests).
bool use_wgmma(int device) {
  const char* v = std::getenv("TVOPS_DCN_WGMMA");  // read each call: one process can compare both
  const bool off = v && std::string(v) == "0";
  int major = 0, minor = 0;
  TVOPS_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  TVOPS_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return !off && major == 9 && minor == 0;
}

// WG: the wgmma kernel (the caller checked use_wgmma).
template <class C, bool WG>
void run_forward(Geo g, const Tensor& input, const Tensor& weight, const Tensor& offset, const Tensor& mask,
                 const Tensor& bias, Tensor& out, const Context& ctx) {
  using T = typename C::T;
  using S = typename C::S;
  static_assert(!WG || (kTune.dcn_wgmma && wgmma_fits<C>()), "wgmma forward");
  constexpr int parts = forward_parts<C, WG>();
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  const Tensor xin = channels_last_input<T>(g, input, ctx);
  const int NC = (g.Cin_g + C::BK - 1) / C::BK, NB = (g.Cout_g + C::BN - 1) / C::BN;
  const int64_t packed = int64_t(g.groups) * g.taps * NC * parts * NB * C::BN * C::BK;
  Tensor wp = Tensor::empty({packed * int64_t(sizeof(S))}, DType::UInt8, input.device(), ctx);
  pack_forward_weights<C, parts>
      <<<grid_stride_blocks(packed), 256, 0, stream>>>(weight.data<T>(), wp.data<S>(), g, packed);
  TVOPS_CUDA_CHECK(cudaGetLastError());
  Args<T, S> a = base_args<T, S>(g, xin, offset, mask);
  a.bias = bias.defined() ? bias.data<T>() : nullptr;
  a.wpack = wp.data<S>();
  a.out = out.data<T>();

  const bool tiled = forward_tile<C>::fits(g);
  auto kernel = tiled ? forward_kernel<C, true, WG> : forward_kernel<C, false, WG>;
  constexpr int smem = forward_smem<C, WG>();
  static_assert(smem <= kTune.smem_per_block_optin, "deform_conv2d: forward tiles exceed shared memory");
  allow_dynamic_smem(kernel, smem);
  const int64_t blocks = tiled ? forward_tile<C>::blocks(g) : (g.NP + C::BM - 1) / C::BM;
  TVOPS_CHECK(blocks < (int64_t(1) << 31), Value, "deform_conv2d: too many pixels for the CUDA forward");
  const dim3 grid(unsigned(blocks), grid_y(int64_t(g.groups) * NB));
  kernel<<<grid, kThreads, smem, stream>>>(a);
  TVOPS_CUDA_CHECK(cudaGetLastError());
}

// The forward with BM x BN tiles: on wgmma where this build and the device have it (K
// steps of one 128-byte row), else mma.sync with BK = 32.
template <typename T, Mode M, int BM, int BN>
void forward_tiles(Geo g, const Tensor& input, const Tensor& weight, const Tensor& offset, const Tensor& mask,
                   const Tensor& bias, Tensor& out, const Context& ctx) {
  using Cw = Cfg<T, M, BM, BN, (M == Mode::Half ? 64 : 32)>;
  if constexpr (kTune.dcn_wgmma && wgmma_fits<Cw>()) {
    if (use_wgmma(input.device().index)) {
      run_forward<Cw, true>(g, input, weight, offset, mask, bias, out, ctx);
      return;
    }
  }
  run_forward<Cfg<T, M, BM, BN, 32>, false>(g, input, weight, offset, mask, bias, out, ctx);
}

// Data gradient (Cd) and weight gradient (Cw) configurations of one dtype and mode.
template <class Cd, class Cw>
void run_backward(Geo g, const Tensor& grad, const Tensor& input, const Tensor& weight, const Tensor& offset,
                  const Tensor& mask, std::vector<Tensor>& res, const Context& ctx) {
  using T = typename Cd::T;
  using S = typename Cd::S;
  using A = typename Cd::A;
  constexpr bool direct = std::is_same_v<T, A>;  // accumulate straight into the outputs
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  const Device dev = input.device();
  const DType acc_type = std::is_same_v<A, double> ? DType::Float64 : DType::Float32;
  const Tensor xin = channels_last_input<T>(g, input, ctx);
  Tensor& grad_input = res[0];
  Tensor& grad_weight = res[1];
  Tensor& grad_offset = res[2];
  Tensor& grad_mask = res[3];
  ZeroList zl{};
  int64_t most = 0;
  auto zeroed = [&](Tensor b) {
    const auto bytes = static_cast<int64_t>(b.nbytes());
    if (bytes == 0) return b;
    if (reinterpret_cast<uintptr_t>(b.data_ptr()) % 16 != 0 || bytes % 4 != 0 || zl.count == kMaxZeroed) {
      TVOPS_CUDA_CHECK(cudaMemsetAsync(b.data_ptr(), 0, b.nbytes(), stream));
    } else {
      zl.p[zl.count] = static_cast<unsigned char*>(b.data_ptr());
      zl.bytes[zl.count++] = bytes;
      most = std::max(most, bytes / 16);
    }
    return b;
  };
  auto acc_buffer = [&](Tensor& out) -> Tensor {
    return zeroed(direct ? out : Tensor::empty(out.sizes(), acc_type, dev, ctx));
  };
  Tensor gi = zeroed(Tensor::empty({int64_t(g.N) * g.HW * g.CP}, acc_type, dev, ctx));
  Tensor gwt = acc_buffer(grad_weight), go = acc_buffer(grad_offset), gb = acc_buffer(res[4]);
  Tensor gm = g.use_mask ? acc_buffer(grad_mask) : Tensor();

  if (zl.count > 0) {
    zero_buffers<<<grid_stride_blocks(std::max<int64_t>(most, 1)), kElementwise, 0, stream>>>(zl);
    TVOPS_CUDA_CHECK(cudaGetLastError());
  }

  Args<T, S> a = base_args<T, S>(g, xin, offset, mask);
  // the packed output gradient: the data kernel's tiles, then (same buffer, stream order)
  // the weight kernel's
  const int NPT = (g.NP + Cd::BM - 1) / Cd::BM, NCOd = (g.Cout_g + Cd::BK - 1) / Cd::BK;
  const int NMBw = (g.Cout_g + Cw::BM - 1) / Cw::BM, NPCw = (g.NP + Cw::BK - 1) / Cw::BK;
  const int64_t gpack_data = int64_t(g.groups) * NPT * Cd::BM * NCOd * Cd::BK;
  const int64_t gpack_weight = int64_t(g.groups) * NMBw * Cw::BM * NPCw * Cw::BK;
  Tensor gp = Tensor::empty({std::max(gpack_data, gpack_weight) * int64_t(sizeof(S))}, DType::UInt8, dev, ctx);
  a.gpack = gp.data<S>();
  a.grad_in_cl = gi.data<A>();
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
    TVOPS_CHECK(g.groups < 65536 && int64_t(NCOd) * Cd::BK / 32 < 65535, Value,
                "deform_conv2d: too many groups or output channels for the CUDA backward");
    const int64_t pack_px = int64_t(kPackTiles) * 32;
    const dim3 pgrid(unsigned((int64_t(NPT) * Cd::BM + pack_px - 1) / pack_px), unsigned((NCOd * Cd::BK + 31) / 32),
                     unsigned(g.groups));
    pack_grad_pixels<Cd><<<pgrid, dim3(32, 8), 0, stream>>>(grad.data<T>(), g, gp.data<S>(), gb.data<A>());
    TVOPS_CUDA_CHECK(cudaGetLastError());
    constexpr int smem = data_smem<Cd>();
    auto kernel = backward_data_kernel<Cd>;
    allow_dynamic_smem(kernel, smem);
    const int64_t yblocks = int64_t(g.groups) * g.taps * NCB;
    TVOPS_CHECK(yblocks < (int64_t(1) << 31), Value, "deform_conv2d: too many channel blocks for the CUDA backward");
    const dim3 grid(unsigned(yblocks), grid_y((g.NP + Cd::BM - 1) / Cd::BM));
    kernel<<<grid, kThreads, smem, stream>>>(a);
    TVOPS_CUDA_CHECK(cudaGetLastError());
  }
  {  // weight gradient
    const int NMB = (g.Cout_g + Cw::BM - 1) / Cw::BM, NCB = (g.Cin_g + Cw::BN - 1) / Cw::BN;
    const int64_t tiles = int64_t(g.groups) * NMB * g.taps * NCB;
    TVOPS_CHECK(int64_t(g.groups) * NMB < (int64_t(1) << 31) && int64_t(g.taps) * NCB < 65536, Value,
                "deform_conv2d: too many weight tiles for the CUDA backward");
    const int64_t want = int64_t(kTune.dcn_weight_blocks_per_sm) * sm_count(dev.index);
    int64_t splits = std::max<int64_t>(1, want / tiles);  // at most one wave: a partial second wave doubles the time
    const int64_t steps = (g.NP + Cw::BK - 1) / Cw::BK;
    splits = std::min<int64_t>({splits, steps, 65535});
    const int64_t per = (steps + splits - 1) / splits;
    splits = (steps + per - 1) / per;
    a.split_pixels = static_cast<int>(per * Cw::BK);
    pack_grad_channels<Cw><<<grid_stride_blocks(gpack_weight), 256, 0, stream>>>(grad.data<T>(), g, gp.data<S>(),
                                                                                  gpack_weight);
    TVOPS_CUDA_CHECK(cudaGetLastError());
    auto kernel = backward_weight_kernel<Cw>;
    constexpr int smem = weight_smem<Cw>();
    allow_dynamic_smem(kernel, smem);
    const dim3 grid(unsigned(g.groups * NMB), unsigned(g.taps * NCB), unsigned(splits));
    kernel<<<grid, kThreads, smem, stream>>>(a);
    TVOPS_CUDA_CHECK(cudaGetLastError());
  }
  {
    const dim3 grid(unsigned((g.HW + 63) / 64), unsigned((g.Cin + 31) / 32), grid_y(g.N));
    TVOPS_CHECK((g.Cin + 31) / 32 < 65536, Value, "deform_conv2d: too many channels for the CUDA layout copy");
    from_channels_last<T, A><<<grid, dim3(32, 8), 0, stream>>>(gi.data<A>(), g, grad_input.data<T>());
    TVOPS_CUDA_CHECK(cudaGetLastError());
  }
  if constexpr (!direct) {
    auto cast = [&](const Tensor& from, Tensor& to) {
      cast_kernel<T, A><<<grid_stride_blocks(to.numel()), 256, 0, stream>>>(from.data<A>(), to.numel(), to.data<T>());
      TVOPS_CUDA_CHECK(cudaGetLastError());
    };
    cast(gwt, grad_weight);
    cast(gb, res[4]);
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
  const bool wide = g.Cout_g > kTune.dcn_wide_min_channels, widest = g.Cout_g > kTune.dcn_widest_min_channels;
  dispatch(input.dtype(), [&](auto tag) {
    using T = decltype(tag);
    with_mode<T>(allow_tf32, [&](auto mode) {
      constexpr Mode M = decltype(mode)::value;
      if constexpr (M == Mode::Simt) {
        run_forward<Cfg<T, M, 64, 64, 16>, false>(g, input, weight, offset, mask, bias, out, ctx);
      } else {
        if (widest)
          forward_tiles<T, M, 64, 256>(g, input, weight, offset, mask, bias, out, ctx);
        else if (wide)
          forward_tiles<T, M, 128, 128>(g, input, weight, offset, mask, bias, out, ctx);
        else
          forward_tiles<T, M, 128, 64>(g, input, weight, offset, mask, bias, out, ctx);
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
  const bool wide = g.Cout_g > kTune.dcn_wide_min_channels && g.Cin_g > kTune.dcn_wide_min_channels;
  dispatch(input.dtype(), [&](auto tag) {
    using T = decltype(tag);
    with_mode<T>(allow_tf32, [&](auto mode) {
      constexpr Mode M = decltype(mode)::value;
      if constexpr (M == Mode::Simt) {
        using C = Cfg<T, M, 64, 64, 16>;
        run_backward<C, C>(g, grad, input, weight, offset, mask, res, ctx);
      } else {
        using Cd = Cfg<T, M, 128, 64, 32>;
        if (wide)
          run_backward<Cd, Cfg<T, M, 128, 128, 32>>(g, grad, input, weight, offset, mask, res, ctx);
        else
          run_backward<Cd, Cfg<T, M, 64, 64, 32>>(g, grad, input, weight, offset, mask, res, ctx);
      }
    });
  });
  return res;
}

}  // namespace tvops::cuda
