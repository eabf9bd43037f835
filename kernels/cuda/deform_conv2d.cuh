// Pieces of the CUDA deform_conv2d (internal): the tile configurations, the warp-level
// matrix products (mma.sync: TF32, 3xTF32, bf16/fp16; a CUDA-core loop for float64) over
// shared-memory tiles, and the DCN bilinear sampler (OPS.md §10).
//
// Every product here is C[m][n] += sum_k A[m][k] * B[n][k] over two shared-memory tiles
// stored k-contiguous ([rows][P], P = BK + 16 bytes of padding), so one fragment load is
// one 32-bit word and the 8 row groups of a warp hit 8 different banks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace tvops::cuda::dcn {

constexpr int kThreads = 256;  // every kernel of the op: 8 warps

// How a tile product multiplies.
enum class Mode {
  Tf32,    // float32 rounded to TF32 once, one mma.m16n8k8 per step
  Tf32x3,  // float32 split into big + small TF32 parts, three mma (exact-float32 mode)
  Half,    // bfloat16 / float16 operands, mma.m16n8k16, float32 accumulators
  Simt,    // float64 on CUDA cores
};

template <typename T> struct AccOf { using type = float; };
template <> struct AccOf<double> { using type = double; };

// One tile shape: BM x BN outputs, BK deep per step, for storage type T in mode M.
template <typename T_, Mode M_, int BM_, int BN_, int BK_>
struct Cfg {
  using T = T_;
  static constexpr Mode M = M_;
  using S = std::conditional_t<M_ == Mode::Half || M_ == Mode::Simt, T_, float>;  // shared-memory operand
  using A = typename AccOf<T_>::type;                                             // accumulator
  static constexpr int BM = BM_, BN = BN_, BK = BK_;
  static constexpr int P = BK + 16 / int(sizeof(S));  // row pitch (elements)
  static constexpr int WN = BN >= 128 ? 4 : 2, WM = 8 / WN;  // warp grid
  static constexpr int WTM = BM / WM, WTN = BN / WN;          // warp tile
  static constexpr int MT = WTM / 16, NT = WTN / 8;           // mma tiles per warp
  static constexpr int KSTEP = M == Mode::Half ? 16 : 8;
  static constexpr int RM = BM / 16, RN = BN / 16;            // Simt: outputs per thread per axis
  static constexpr int kAcc = M == Mode::Simt ? RM * RN : MT * NT * 4;
  static constexpr int kTileBytes = 2 * (BM + BN) * P * int(sizeof(S));  // double-buffered A and B
  static_assert(M == Mode::Simt || (MT >= 1 && NT >= 1 && WTM % 16 == 0 && WTN % 8 == 0), "tile");
  static_assert(BK % KSTEP == 0, "depth");
};

// ---- scalar conversions ----
template <typename T> __device__ inline typename AccOf<T>::type to_acc(T v) { return v; }
template <> __device__ inline float to_acc(__half v) { return __half2float(v); }
template <> __device__ inline float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T, typename A> __device__ inline T from_acc(A v) { return static_cast<T>(v); }
template <> __device__ inline __half from_acc<__half, float>(float v) { return __float2half_rn(v); }
template <> __device__ inline __nv_bfloat16 from_acc<__nv_bfloat16, float>(float v) { return __float2bfloat16_rn(v); }

template <typename T> __device__ inline typename AccOf<T>::type ld(const T* p) { return to_acc(*p); }

__device__ inline uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
}

// The value a product operand holds in shared memory.
template <class C>
__device__ inline typename C::S to_operand(typename C::A v) {
  if constexpr (C::M == Mode::Tf32)
    return __uint_as_float(to_tf32(v));
  else
    return from_acc<typename C::S>(v);
}

// ---- mma.sync wrappers (sm_80+) ----
__device__ inline void mma_tf32(float* d, const uint32_t* a, const uint32_t* b) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <typename H>
__device__ inline void mma_16(float* d, const uint32_t* a, const uint32_t* b) {
  if constexpr (std::is_same_v<H, __nv_bfloat16>)
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ inline void cp_async16(void* smem, const void* gmem) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ inline void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

// Copies a contiguous [rows][BK] block of packed operands into a [rows][P] tile.
template <class C, int ROWS>
__device__ inline void load_tile_async(typename C::S* dst, const typename C::S* src) {
  constexpr int kPerRow = C::BK * int(sizeof(typename C::S)) / 16;
  constexpr int kChunks = ROWS * kPerRow;
  constexpr int kElems = 16 / int(sizeof(typename C::S));
  if constexpr (kChunks % kThreads == 0 && kThreads % kPerRow == 0) {
    // every thread the same chunk column of rows kThreads / kPerRow apart: constant offsets,
    // no index arithmetic per copy
    constexpr int kRowStep = kThreads / kPerRow;
    const int r = threadIdx.x / kPerRow, q = threadIdx.x % kPerRow;
    typename C::S* d = dst + r * C::P + q * kElems;
    const typename C::S* s = src + r * C::BK + q * kElems;
#pragma unroll
    for (int j = 0; j < kChunks / kThreads; ++j) cp_async16(d + j * kRowStep * C::P, s + j * kRowStep * C::BK);
  } else {
    for (int i = threadIdx.x; i < kChunks; i += kThreads) {
      const int r = i / kPerRow, q = i % kPerRow;
      cp_async16(dst + r * C::P + q * kElems, src + r * C::BK + q * kElems);
    }
  }
}

// Stores R consecutive operands with 16-byte stores (dst 16-byte aligned).
template <typename S, int R>
__device__ inline void store_run(S* dst, const S (&v)[R]) {
  static_assert(R * sizeof(S) % 16 == 0, "run");
#pragma unroll
  for (int q = 0; q < int(R * sizeof(S) / 16); ++q) {
    uint4 u;
    memcpy(&u, &v[q * 16 / sizeof(S)], 16);
    reinterpret_cast<uint4*>(dst)[q] = u;
  }
}

// Four 8x8 matrices of 16-bit pairs (any 32-bit data: rows of 16 bytes) from shared memory;
// lane l gives the address of row l % 8 of matrix l / 8, and gets word l % 4 of row l / 4
// of each matrix.
__device__ inline void ldmatrix_x4(uint32_t (&r)[4], const void* row_address) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(row_address));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

// ---- the tile product ----

// Row and column of accumulator e of this thread.
template <class C>
__device__ inline void acc_coord(int e, int& row, int& col) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if constexpr (C::M == Mode::Simt) {
    row = threadIdx.x % 16 + 16 * (e / C::RN);
    col = threadIdx.x / 16 + 16 * (e % C::RN);
  } else {
    const int wm = warp / C::WN, wn = warp % C::WN;
    const int mt = e / (C::NT * 4), nt = (e / 4) % C::NT, q = e % 4;
    row = wm * C::WTM + mt * 16 + lane / 4 + (q >= 2 ? 8 : 0);
    col = wn * C::WTN + nt * 8 + 2 * (lane % 4) + (q & 1);
  }
}

// B is [n][P] (k contiguous) when PB == 0, else [k][PB] (n contiguous).
template <class C, int PB = 0>
__device__ inline void tile_product(const typename C::S* __restrict__ sA, const typename C::S* __restrict__ sB,
                                    typename C::A* acc) {
  using S = typename C::S;
  constexpr int P = C::P;
  // element (k, n) of B
  auto b_at = [&](int k, int n) -> const S* { return PB == 0 ? sB + n * P + k : sB + k * PB + n; };
  if constexpr (C::M == Mode::Simt) {
    const int tm = threadIdx.x % 16, tn = threadIdx.x / 16;
#pragma unroll 4
    for (int k = 0; k < C::BK; ++k) {
      S a[C::RM], b[C::RN];
#pragma unroll
      for (int i = 0; i < C::RM; ++i) a[i] = sA[(tm + 16 * i) * P + k];
#pragma unroll
      for (int j = 0; j < C::RN; ++j) b[j] = *b_at(k, tn + 16 * j);
#pragma unroll
      for (int i = 0; i < C::RM; ++i)
#pragma unroll
        for (int j = 0; j < C::RN; ++j) acc[i * C::RN + j] = fma(a[i], b[j], acc[i * C::RN + j]);
    }
  } else {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = warp / C::WN, wn = warp % C::WN, g = lane / 4, t = lane % 4;
    constexpr int HALF = 16 / int(sizeof(S));  // elements in 16 bytes: a fragment's k half
    // ldmatrix row addresses: A rows of this lane's matrix (l / 8: rows +8, k +HALF),
    // B (n-major) rows for two n-tiles (l / 16: next tile, (l / 8) % 2: k +HALF)
    const S* a_row = sA + (wm * C::WTM + (lane / 8 % 2) * 8 + lane % 8) * P + (lane / 16) * HALF;
    const S* b_row = sB + (wn * C::WTN + (lane / 16) * 8 + lane % 8) * P + (lane / 8 % 2) * HALF;
    const int n_base = wn * C::WTN + g;
#pragma unroll
    for (int k0 = 0; k0 < C::BK; k0 += C::KSTEP) {
      uint32_t af[C::MT][4], bf[C::NT][2];
#pragma unroll
      for (int mt = 0; mt < C::MT; ++mt) ldmatrix_x4(af[mt], a_row + mt * 16 * P + k0);
      if constexpr (PB == 0) {
#pragma unroll
        for (int nt = 0; nt < C::NT; nt += 2) {
          uint32_t r[4];
          ldmatrix_x4(r, b_row + nt * 8 * P + k0);
          bf[nt][0] = r[0];
          bf[nt][1] = r[1];
          bf[nt + 1][0] = r[2];
          bf[nt + 1][1] = r[3];
        }
      } else if constexpr (C::M == Mode::Half) {  // k-major B: pairs along k are a row apart
#pragma unroll
        for (int nt = 0; nt < C::NT; ++nt) {
          const int n = n_base + nt * 8;
          auto pair = [&](int k) {
            const uint32_t lo = *reinterpret_cast<const uint16_t*>(b_at(k, n));
            const uint32_t hi = *reinterpret_cast<const uint16_t*>(b_at(k + 1, n));
            return lo | hi << 16;
          };
          bf[nt][0] = pair(k0 + 2 * t);
          bf[nt][1] = pair(k0 + 2 * t + 8);
        }
      } else {
#pragma unroll
        for (int nt = 0; nt < C::NT; ++nt) {
          bf[nt][0] = __float_as_uint(*b_at(k0 + t, n_base + nt * 8));
          bf[nt][1] = __float_as_uint(*b_at(k0 + t + 4, n_base + nt * 8));
        }
      }
      if constexpr (C::M == Mode::Half) {
#pragma unroll
        for (int mt = 0; mt < C::MT; ++mt)
#pragma unroll
          for (int nt = 0; nt < C::NT; ++nt) mma_16<S>(acc + (mt * C::NT + nt) * 4, af[mt], bf[nt]);
      } else if constexpr (C::M == Mode::Tf32) {
#pragma unroll
        for (int mt = 0; mt < C::MT; ++mt)
#pragma unroll
          for (int nt = 0; nt < C::NT; ++nt) mma_tf32(acc + (mt * C::NT + nt) * 4, af[mt], bf[nt]);
      } else {  // Tf32x3: x = big + small, x*y ~ big*big + big*small + small*big
        auto split = [](uint32_t x, uint32_t& big, uint32_t& small) {
          big = to_tf32(__uint_as_float(x));
          small = to_tf32(__uint_as_float(x) - __uint_as_float(big));
        };
        uint32_t ab[C::MT][4], as[C::MT][4], bb[C::NT][2], bs[C::NT][2];
#pragma unroll
        for (int mt = 0; mt < C::MT; ++mt)
#pragma unroll
          for (int i = 0; i < 4; ++i) split(af[mt][i], ab[mt][i], as[mt][i]);
#pragma unroll
        for (int nt = 0; nt < C::NT; ++nt)
#pragma unroll
          for (int i = 0; i < 2; ++i) split(bf[nt][i], bb[nt][i], bs[nt][i]);
        // The tensor cores add into their float32 accumulator without rounding to
        // nearest, an error that grows with K (2400 terms: 1.4e-5 of the norm against
        // 3.4e-7 for float32 FMAs). Each 8-term step sums into a fresh fragment, which
        // joins the running sum by a float32 add.
#pragma unroll
        for (int mt = 0; mt < C::MT; ++mt)
#pragma unroll
          for (int nt = 0; nt < C::NT; ++nt) {
            float step[4] = {0.f, 0.f, 0.f, 0.f};
            mma_tf32(step, as[mt], bb[nt]);
            mma_tf32(step, ab[mt], bs[nt]);
            mma_tf32(step, ab[mt], bb[nt]);
            float* d = acc + (mt * C::NT + nt) * 4;
#pragma unroll
            for (int i = 0; i < 4; ++i) d[i] += step[i];
          }
      }
    }
  }
}

// ---- vector loads and atomics over runs of channels (channels-last data) ----

// v[0..V) = p[0..V) in the accumulator type; p aligned to V * sizeof(T) (8 or 16 bytes).
template <typename T, int V>
__device__ inline void load_vec(const T* p, typename AccOf<T>::type (&v)[V]) {
  constexpr int B = V * int(sizeof(T));
  static_assert(B == 8 || B == 16, "vector");
  T t[V];
  if constexpr (B == 16) {
    const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
    memcpy(t, &u, 16);
  } else {
    const uint2 u = __ldg(reinterpret_cast<const uint2*>(p));
    memcpy(t, &u, 8);
  }
#pragma unroll
  for (int j = 0; j < V; ++j) v[j] = to_acc(t[j]);
}

template <typename A, int V>
__device__ inline void atomic_add_vec(A* p, const A (&v)[V]) {
#if __CUDA_ARCH__ >= 900
  constexpr bool kVector = std::is_same_v<A, float> && V == 4;  // one 16-byte atomic (sm_90+)
#else
  constexpr bool kVector = false;
#endif
  if constexpr (kVector) {
    atomicAdd(reinterpret_cast<float4*>(p), make_float4(v[0], v[1], v[2], v[3]));
  } else {
#pragma unroll
    for (int j = 0; j < V; ++j) atomicAdd(p + j, v[j]);
  }
}

// ---- geometry and the DCN bilinear sampler ----

// The call's geometry in 32-bit ints (the host checks the ranges).
struct Geo {
  int N, Cin, H, W, Cout, kh, kw, Ho, Wo, sh, sw, ph, pw, dh, dw, groups, G;
  int Cin_g, Cout_g, cpg, taps, HWo, HW, NP;
  int CinP, CP;  // channels-last copies: a group's channels padded to CinP, CP = groups * CinP a pixel
  bool use_mask;
};

// One output pixel of the flattened [N * Ho * Wo] range.
struct Pix {
  int b, pix, oy, ox;
  bool ok;
};
__device__ inline Pix decode(const Geo& g, int P) {
  Pix p;
  p.ok = P < g.NP;
  const int q = p.ok ? P : 0;
  p.b = q / g.HWo;
  p.pix = q - p.b * g.HWo;
  p.oy = p.pix / g.Wo;
  p.ox = p.pix - p.oy * g.Wo;
  return p;
}

// The sample of one (pixel, tap, offset group): torchvision's bilinear_interpolate with
// zero padding, and what the backward needs for the coordinate weights, which have no
// whole-point range test (so y == -1 still moves the offset). ok: bits 0-3 mark the
// corners (yl,xl) (yl,xh) (yh,xl) (yh,xh) inside the image; bit 4 the strict range
// -1 < y < H, -1 < x < W. Coordinates outside [-1, H) x [-1, W), NaN included, leave
// every bit clear: no corner is read and every weight is 0.
template <typename A>
struct Sample {
  int idx;  // yl * W + xl
  unsigned ok;
  A w00, w01, w10, w11;  // bilinear weights (0 unless bit 4)
  A ly, lx, m;           // fractions, mask value
};

// The offset (dy, dx) and mask value of one (pixel, tap, offset group), read but not
// yet used: a block issues these loads early and finishes the sample later.
// Kept in the storage type: converting at the load would wait for it.
template <typename T>
struct SampleLoads {
  T dy, dx, m;
};
template <typename T>
__device__ inline SampleLoads<T> sample_loads(const Geo& g, const T* __restrict__ offset, const T* __restrict__ mask,
                                              const Pix& p, int tap, int og) {
  SampleLoads<T> l;
  const int64_t ob = ((int64_t(p.b) * g.G + og) * 2 * g.taps + 2 * tap) * g.HWo + p.pix;
  l.dy = offset[ob];
  l.dx = offset[ob + g.HWo];
  l.m = g.use_mask ? mask[((int64_t(p.b) * g.G + og) * g.taps + tap) * g.HWo + p.pix]
                   : from_acc<T>(typename AccOf<T>::type(1));
  return l;
}

template <typename T, typename A = typename AccOf<T>::type>
__device__ inline Sample<A> sample_from(const Geo& g, const Pix& p, int tap, const SampleLoads<T>& l) {
  Sample<A> s;
  const int i = tap / g.kw, j = tap - i * g.kw;
  const A dy = to_acc(l.dy), dx = to_acc(l.dx);
  s.m = to_acc(l.m);
  const A y = A(p.oy * g.sh - g.ph + i * g.dh) + dy;
  const A x = A(p.ox * g.sw - g.pw + j * g.dw) + dx;
  s.ok = 0;
  s.idx = 0;
  s.w00 = s.w01 = s.w10 = s.w11 = s.ly = s.lx = A(0);
  if (y >= A(-1) && y < A(g.H) && x >= A(-1) && x < A(g.W)) {
    const A fy = floor(y), fx = floor(x);
    const int yl = static_cast<int>(fy), xl = static_cast<int>(fx);
    s.ly = y - fy;
    s.lx = x - fx;
    s.idx = yl * g.W + xl;
    const bool yl_ok = yl >= 0, yh_ok = yl + 1 < g.H, xl_ok = xl >= 0, xh_ok = xl + 1 < g.W;
    s.ok = unsigned(yl_ok && xl_ok) | unsigned(yl_ok && xh_ok) << 1 | unsigned(yh_ok && xl_ok) << 2 |
           unsigned(yh_ok && xh_ok) << 3;
    if (y > A(-1) && x > A(-1)) {
      s.ok |= 16u;
      const A hy = A(1) - s.ly, hx = A(1) - s.lx;
      s.w00 = hy * hx;
      s.w01 = hy * s.lx;
      s.w10 = s.ly * hx;
      s.w11 = s.ly * s.lx;
    }
  }
  return s;
}

template <typename T, typename A = typename AccOf<T>::type>
__device__ inline Sample<A> make_sample(const Geo& g, const T* __restrict__ offset, const T* __restrict__ mask,
                                        const Pix& p, int tap, int og) {
  return sample_from<T, A>(g, p, tap, sample_loads<T>(g, offset, mask, p, tap, og));
}

// The four corners of a sample in one channel plane (0 outside the image).
template <typename T, typename A>
__device__ inline void gather(const T* __restrict__ plane, const Sample<A>& s, int W, A& v00, A& v01, A& v10,
                              A& v11) {
  const T* p = plane + s.idx;
  v00 = (s.ok & 1u) ? ld(p) : A(0);
  v01 = (s.ok & 2u) ? ld(p + 1) : A(0);
  v10 = (s.ok & 4u) ? ld(p + W) : A(0);
  v11 = (s.ok & 8u) ? ld(p + W + 1) : A(0);
}

template <typename A>
__device__ inline A bilinear(const Sample<A>& s, A v00, A v01, A v10, A v11) {
  return s.w00 * v00 + s.w01 * v01 + s.w10 * v10 + s.w11 * v11;
}

}  // namespace tvops::cuda::dcn
