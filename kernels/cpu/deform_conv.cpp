// deform_conv2d as an implicit GEMM (see deform_conv.h). Per tile of output pixels:
// sample a block of columns col[pixel][k] (k = tap * Cin_g + channel, channel runs
// contiguous in the NHWC input, so the bilinear taps are vector loads), multiply it
// with the packed weights in register-blocked micro-kernels, and move on; the
// backward recomputes the block and uses it for every gradient while it is in cache.
#include "kernels/cpu/deform_conv.h"

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif
#if defined(__ARM_FEATURE_SVE)
#include <arm_sve.h>
#endif

#include "kernels/cpu/buffer.h"
#include "kernels/cpu/transpose.h"
#include "kernels/cpu/vec_half.h"

namespace tvops::cpu::TVOPS_CPU_TIER {
namespace {

template <typename T>
using Vec = xsimd::batch<T>;

// Micro-kernel shape: MR rows of A broadcast against NV vectors of B. Tiers with 32
// vector registers keep 6 x 4 accumulators, AVX2's 16 registers 6 x 2.
#if defined(__AVX512F__) || defined(__aarch64__)
constexpr int kNV = 4;
#else
constexpr int kNV = 2;
#endif
constexpr int kMR = 6;
// k values sampled per block: 64 pixels x 256 k = 64 KB of float32 columns.
constexpr int64_t kChunk = 256;

template <typename T>
constexpr int64_t block_width() {
  return kDeformBlockBytes / int64_t(sizeof(T));
}

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Calls fn(std::integral_constant<int, rows>{}, i) for the row groups [i, i + rows) of m
// rows, kMR at a time (the last group shorter): micro-kernels take their row count as
// a template argument so their accumulators stay in registers.
template <typename Fn>
void for_row_groups(int64_t m, Fn&& fn) {
  for (int64_t i = 0; i < m; i += kMR) {
    switch (std::min<int64_t>(kMR, m - i)) {
      case 6: fn(std::integral_constant<int, 6>{}, i); break;
      case 5: fn(std::integral_constant<int, 5>{}, i); break;
      case 4: fn(std::integral_constant<int, 4>{}, i); break;
      case 3: fn(std::integral_constant<int, 3>{}, i); break;
      case 2: fn(std::integral_constant<int, 2>{}, i); break;
      default: fn(std::integral_constant<int, 1>{}, i); break;
    }
  }
}

// C[i][0 .. NV lanes) += sum_k A(i, k) * B[k][0 .. NV lanes) for i < MR, where
// A(i, k) = a[i * a_row + k * a_k].
template <typename T, int MR>
void micro_kernel(const T* a, int64_t a_row, int64_t a_k, const T* b, int64_t ldb, int64_t kdim, T* c,
                  int64_t ldc) {
  constexpr int L = int(Vec<T>::size);
  Vec<T> acc[MR][kNV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < kNV; ++j) acc[i][j] = Vec<T>::load_unaligned(c + i * ldc + j * L);
  for (int64_t k = 0; k < kdim; ++k) {
    Vec<T> bv[kNV];
#pragma GCC unroll 8
    for (int j = 0; j < kNV; ++j) bv[j] = Vec<T>::load_unaligned(b + k * ldb + j * L);
    const T* ak = a + k * a_k;
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const Vec<T> av(ak[i * a_row]);
#pragma GCC unroll 8
      for (int j = 0; j < kNV; ++j) acc[i][j] = xsimd::fma(av, bv[j], acc[i][j]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < kNV; ++j) acc[i][j].store_unaligned(c + i * ldc + j * L);
}

#if defined(__ARM_FEATURE_SVE)
// The float32 micro-kernel with SVE at any vector length: two predicated vectors per
// row (whilelt against the 64-wide block), rows unrolled by hand because sizeless SVE
// types can't live in arrays.
template <int MR>
void micro_kernel_sve(const float* a, int64_t a_row, int64_t a_k, const float* b, int64_t ldb, int64_t kdim, float* c,
                      int64_t ldc, int64_t j, int64_t width) {
  const int64_t lanes = int64_t(svcntw());
  const svbool_t p0 = svwhilelt_b32(j, width), p1 = svwhilelt_b32(j + lanes, width);
#define TVOPS_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define TVOPS_LOAD(i)                                                                            \
  svfloat32_t c##i##0 = svdup_f32(0.f), c##i##1 = svdup_f32(0.f);                                 \
  if constexpr (i < MR) {                                                                        \
    c##i##0 = svld1_f32(p0, c + i * ldc + j);                                                    \
    c##i##1 = svld1_f32(p1, c + i * ldc + j + lanes);                                            \
  }
  TVOPS_ROWS(TVOPS_LOAD)
  for (int64_t k = 0; k < kdim; ++k) {
    const svfloat32_t b0 = svld1_f32(p0, b + k * ldb + j), b1 = svld1_f32(p1, b + k * ldb + j + lanes);
    const float* ak = a + k * a_k;
#define TVOPS_FMA(i)                                        \
    if constexpr (i < MR) {                                 \
      const svfloat32_t av = svdup_f32(ak[i * a_row]);      \
      c##i##0 = svmla_f32_x(p0, c##i##0, av, b0);           \
      c##i##1 = svmla_f32_x(p1, c##i##1, av, b1);           \
    }
    TVOPS_ROWS(TVOPS_FMA)
  }
#define TVOPS_STORE(i)                                      \
  if constexpr (i < MR) {                                   \
    svst1_f32(p0, c + i * ldc + j, c##i##0);                \
    svst1_f32(p1, c + i * ldc + j + lanes, c##i##1);        \
  }
  TVOPS_ROWS(TVOPS_STORE)
#undef TVOPS_STORE
#undef TVOPS_FMA
#undef TVOPS_LOAD
#undef TVOPS_ROWS
}
#endif

// C[m][0 .. block) += A[m][kdim] * B[kdim][0 .. block), block = 256 bytes of T.
template <typename T>
void gemm_block(int64_t m, const T* a, int64_t a_row, int64_t a_k, const T* b, int64_t ldb, int64_t kdim, T* c,
                int64_t ldc) {
#if defined(__ARM_FEATURE_SVE)
  if constexpr (sizeof(T) == 4) {
    const int64_t width = block_width<T>(), step = 2 * int64_t(svcntw());
    for (int64_t j = 0; j < width; j += step)
      for_row_groups(m, [&](auto rows, int64_t i) {
        micro_kernel_sve<rows>(a + i * a_row, a_row, a_k, b, ldb, kdim, c + i * ldc, ldc, j, width);
      });
    return;
  }
#endif
  constexpr int64_t step = kNV * int64_t(Vec<T>::size);
  static_assert(block_width<T>() % step == 0, "the block is a whole number of micro-kernel widths");
  for (int64_t j = 0; j < block_width<T>(); j += step)
    for_row_groups(m, [&](auto rows, int64_t i) {
      micro_kernel<T, rows>(a + i * a_row, a_row, a_k, b + j, ldb, kdim, c + i * ldc + j, ldc);
    });
}

// One deformed sampling point: DCN bilinear (zero padding, strict range test, OPS.md
// §10) with the four corners' pixel offsets and weights; invalid corners are dropped.
template <typename T>
struct Point {
  int64_t pos[4];  // y * W + x of corners (yl, xl), (yl, xh), (yh, xl), (yh, xh)
  T w[4];          // bilinear weights of the valid corners (0 for invalid ones)
  bool valid[4];
  T ly, lx;        // fractional parts, for the coordinate gradients
  bool sampled;    // inside the forward's range: (-1, H) x (-1, W)
  bool touches;    // some corner on the map (the coordinate gradients' range, [-1, H) x [-1, W))
};

template <typename T>
Point<T> make_point(T y, T x, int64_t H, int64_t W) {
  Point<T> p{};
  p.touches = y >= T(-1) && y < T(H) && x >= T(-1) && x < T(W);  // false for NaN
  if (!p.touches) return p;
  p.sampled = y > T(-1) && x > T(-1);
  const T fy = std::floor(y), fx = std::floor(x);
  const int64_t yl = int64_t(fy), xl = int64_t(fx), yh = yl + 1, xh = xl + 1;
  p.ly = y - fy;
  p.lx = x - fx;
  const T hy = T(1) - p.ly, hx = T(1) - p.lx;
  const bool vyl = yl >= 0, vyh = yh <= H - 1, vxl = xl >= 0, vxh = xh <= W - 1;
  p.valid[0] = vyl && vxl;
  p.valid[1] = vyl && vxh;
  p.valid[2] = vyh && vxl;
  p.valid[3] = vyh && vxh;
  p.pos[0] = yl * W + xl;
  p.pos[1] = yl * W + xh;
  p.pos[2] = yh * W + xl;
  p.pos[3] = yh * W + xh;
  p.w[0] = hy * hx;
  p.w[1] = hy * p.lx;
  p.w[2] = p.ly * hx;
  p.w[3] = p.ly * p.lx;
  return p;
}

// Calls fn(tap, offset group, first channel (global), end channel, column in the block)
// for each run of channels of the block [k0, k0 + kc) of weight group gw that share a
// tap and an offset group (and so their sampling points).
template <typename Fn>
void for_each_run(const DeformConvShape& s, int64_t gw, int64_t k0, int64_t kc, Fn&& fn) {
  const int64_t taps = s.taps(), cin_g = s.in_per_group(), cin_og = s.in_per_offset_group();
  const int64_t c_group = gw * cin_g;
  const int64_t tap0 = k0 / cin_g, tap1 = std::min(taps, (k0 + kc + cin_g - 1) / cin_g);
  for (int64_t tap = tap0; tap < tap1; ++tap) {
    const int64_t lo = std::max<int64_t>(k0 - tap * cin_g, 0), hi = std::min(k0 + kc - tap * cin_g, cin_g);
    for (int64_t c = c_group + lo; c < c_group + hi;) {
      const int64_t g = c / cin_og, c_end = std::min(c_group + hi, (g + 1) * cin_og);
      fn(tap, g, c, c_end, tap * cin_g + (c - c_group) - k0);
      c = c_end;
    }
  }
}

// The (image b, offset group g, tap) plane of the offset tensor ([..., 2, Ho, Wo]: its
// y plane, then x) and of the mask ([..., Ho, Wo]).
inline int64_t tap_plane(const DeformConvShape& s, int64_t b, int64_t g, int64_t tap) {
  return (b * s.offset_groups + g) * s.taps() + tap;
}

// The sampling point of output pixel pix at tap (ki, kj). torchvision adds the offset
// to (oy * stride - pad) + i * dilation, an integer, in T.
template <typename T>
Point<T> tap_point(const DeformConvShape& s, const T* off, int64_t hwo, int64_t pix, int64_t oy, int64_t ox,
                   int64_t ki, int64_t kj) {
  const T y = T(oy * s.stride_h - s.pad_h + ki * s.dilation_h) + off[pix];
  const T x = T(ox * s.stride_w - s.pad_w + kj * s.dilation_w) + off[hwo + pix];
  return make_point(y, x, s.height, s.width);
}

// Walks the sampling points of a column block: pixels [p0, p0 + np) of image b,
// weight group gw, k in [k0, k0 + kc). For each (tap, run of channels sharing an
// offset group, pixel) calls fn(pixel, point, mask value, first channel (global),
// channel count, column in the block, offset group, tap).
template <typename Args, typename Fn>
void for_each_point(const Args& a, int64_t b, int64_t p0, int64_t np, int64_t gw, int64_t k0, int64_t kc, Fn&& fn) {
  using T = std::remove_cv_t<std::remove_pointer_t<decltype(a.offset)>>;
  const DeformConvShape& s = a.s;
  const int64_t hwo = s.out_h * s.out_w;
  const auto* image = a.input + b * s.height * s.width * s.in_channels;
  for_each_run(s, gw, k0, kc, [&](int64_t tap, int64_t g, int64_t c, int64_t c_end, int64_t column) {
    const int64_t ki = tap / s.kernel_w, kj = tap % s.kernel_w;
    const T* off = a.offset + tap_plane(s, b, g, tap) * 2 * hwo;
    const T* msk = a.mask ? a.mask + tap_plane(s, b, g, tap) * hwo : nullptr;
    // The run's points first, so the channel loops can prefetch corners a few points
    // ahead (data-dependent gathers the hardware prefetcher can't guess).
    Point<T> pts[kDeformTilePixels];
    int64_t oy = p0 / s.out_w, ox = p0 % s.out_w;
    for (int64_t p = 0; p < np; ++p) {
      pts[p] = tap_point(s, off, hwo, p0 + p, oy, ox, ki, kj);
      if (++ox == s.out_w) ox = 0, ++oy;
    }
    constexpr int64_t kAhead = 8;
    for (int64_t p = 0; p < np; ++p) {
      if (p + kAhead < np) {
        const Point<T>& next = pts[p + kAhead];
        for (int q = 0; q < 4; ++q)
          if (next.valid[q]) __builtin_prefetch(image + next.pos[q] * s.in_channels + c);
      }
      fn(p, pts[p], msk ? msk[p0 + p] : T(1), c, c_end - c, column, g, tap);
    }
  });
}

// The forward's view of a run's sampling points, corner by corner: the pixel y * W + x
// (-1 for a corner off the map or a point outside the sampled range) and the weight
// m * bilinear weight.
template <typename T>
struct RunCorners {
  int64_t pos[4][kDeformTilePixels];
  T w[4][kDeformTilePixels];
};

// The producers below are `noipa`: GCC 12 at -O2 addresses both arrays of a RunCorners
// from one induction variable with a null base (MEM[0B - &rc + 2 * iv]), and its
// interprocedural mod/ref analysis then treats the function as not writing `rc` and
// deletes the call (seen on the avx2 tier). Callers must not use their summaries.
#define TVOPS_OPAQUE __attribute__((noipa))

template <typename T>
TVOPS_OPAQUE void run_corners_scalar(const DeformConvShape& s, const T* off, const T* msk, int64_t p0, int64_t np,
                                     int64_t tap, RunCorners<T>& rc) {
  const int64_t hwo = s.out_h * s.out_w, ki = tap / s.kernel_w, kj = tap % s.kernel_w;
  int64_t oy = p0 / s.out_w, ox = p0 % s.out_w;
  for (int64_t p = 0; p < np; ++p) {
    const Point<T> pt = tap_point(s, off, hwo, p0 + p, oy, ox, ki, kj);
    const T m = msk ? msk[p0 + p] : T(1);
    for (int q = 0; q < 4; ++q) {
      rc.pos[q][p] = pt.sampled && pt.valid[q] ? pt.pos[q] : -1;
      rc.w[q][p] = m * pt.w[q];
    }
    if (++ox == s.out_w) ox = 0, ++oy;
  }
}

#if defined(__AVX512F__)
// make_point for 16 pixels at a time, with the same float operations (so the same
// bits). Needs every coordinate, H, W and H * W exact in int32 and float.
TVOPS_OPAQUE void run_corners_avx512(const DeformConvShape& s, const float* off, const float* msk, int64_t p0, int64_t np,
                        int64_t tap, RunCorners<float>& rc) {
  const int64_t hwo = s.out_h * s.out_w, ki = tap / s.kernel_w, kj = tap % s.kernel_w;
  const __m512 minus1 = _mm512_set1_ps(-1.f), one = _mm512_set1_ps(1.f), zero = _mm512_setzero_ps();
  const __m512 h = _mm512_set1_ps(float(s.height)), w = _mm512_set1_ps(float(s.width));
  const __m512 y_last = _mm512_set1_ps(float(s.height - 2)), x_last = _mm512_set1_ps(float(s.width - 2));
  const __m512i width = _mm512_set1_epi32(int32_t(s.width)), none = _mm512_set1_epi32(-1);
  const __m512i right = _mm512_set1_epi32(1), below = width, diagonal = _mm512_set1_epi32(int32_t(s.width + 1));
  // Output coordinates of the 16 pixels in vectors (a scalar staging array would stall
  // every load on store forwarding).
  const __m512i out_w = _mm512_set1_epi32(int32_t(s.out_w)), step = _mm512_set1_epi32(1);
  const __m512i stride_h = _mm512_set1_epi32(int32_t(s.stride_h)), stride_w = _mm512_set1_epi32(int32_t(s.stride_w));
  const __m512i y0 = _mm512_set1_epi32(int32_t(ki * s.dilation_h - s.pad_h));
  const __m512i x0 = _mm512_set1_epi32(int32_t(kj * s.dilation_w - s.pad_w));
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int64_t p = 0; p < np; p += 16) {
    const __mmask16 lanes = np - p >= 16 ? __mmask16(0xffff) : __mmask16((1u << (np - p)) - 1);
    __m512i oy = _mm512_set1_epi32(int32_t((p0 + p) / s.out_w));
    __m512i ox = _mm512_add_epi32(_mm512_set1_epi32(int32_t((p0 + p) % s.out_w)), iota);
    for (__mmask16 wrap; (wrap = _mm512_cmpge_epi32_mask(ox, out_w));) {  // rows narrower than 16 wrap more than once
      ox = _mm512_mask_sub_epi32(ox, wrap, ox, out_w);
      oy = _mm512_mask_add_epi32(oy, wrap, oy, step);
    }
    __m512 y = _mm512_add_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_mullo_epi32(oy, stride_h), y0)),
                             _mm512_maskz_loadu_ps(lanes, off + p0 + p));
    __m512 x = _mm512_add_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_mullo_epi32(ox, stride_w), x0)),
                             _mm512_maskz_loadu_ps(lanes, off + hwo + p0 + p));
    // Sampled: (-1, H) x (-1, W); ordered compares, so NaN is out.
    const __mmask16 in = lanes & _mm512_cmp_ps_mask(y, minus1, _CMP_GT_OQ) & _mm512_cmp_ps_mask(y, h, _CMP_LT_OQ) &
                         _mm512_cmp_ps_mask(x, minus1, _CMP_GT_OQ) & _mm512_cmp_ps_mask(x, w, _CMP_LT_OQ);
    y = _mm512_maskz_mov_ps(in, y);
    x = _mm512_maskz_mov_ps(in, x);
    const __m512 fy = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m512 fx = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m512 ly = _mm512_sub_ps(y, fy), lx = _mm512_sub_ps(x, fx);
    const __m512 hy = _mm512_sub_ps(one, ly), hx = _mm512_sub_ps(one, lx);
    const __m512 m = msk ? _mm512_maskz_loadu_ps(lanes, msk + p0 + p) : one;
    const __mmask16 top = in & _mm512_cmp_ps_mask(fy, zero, _CMP_GE_OQ);
    const __mmask16 bottom = in & _mm512_cmp_ps_mask(fy, y_last, _CMP_LE_OQ);
    const __mmask16 left = _mm512_cmp_ps_mask(fx, zero, _CMP_GE_OQ);
    const __mmask16 rightmost = _mm512_cmp_ps_mask(fx, x_last, _CMP_LE_OQ);
    const __m512i base = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_cvttps_epi32(fy), width), _mm512_cvttps_epi32(fx));
    const __m512i pos[4] = {_mm512_mask_blend_epi32(top & left, none, base),
                            _mm512_mask_blend_epi32(top & rightmost, none, _mm512_add_epi32(base, right)),
                            _mm512_mask_blend_epi32(bottom & left, none, _mm512_add_epi32(base, below)),
                            _mm512_mask_blend_epi32(bottom & rightmost, none, _mm512_add_epi32(base, diagonal))};
    const __m512 wq[4] = {_mm512_mul_ps(m, _mm512_mul_ps(hy, hx)), _mm512_mul_ps(m, _mm512_mul_ps(hy, lx)),
                          _mm512_mul_ps(m, _mm512_mul_ps(ly, hx)), _mm512_mul_ps(m, _mm512_mul_ps(ly, lx))};
    for (int q = 0; q < 4; ++q) {  // the arrays hold kDeformTilePixels, a multiple of 16
      _mm512_storeu_si512(rc.pos[q] + p, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(pos[q])));
      _mm512_storeu_si512(rc.pos[q] + p + 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(pos[q], 1)));
      _mm512_storeu_ps(rc.w[q] + p, wq[q]);
    }
  }
}
#endif

template <typename T>
void run_corners(const DeformConvShape& s, const T* off, const T* msk, int64_t p0, int64_t np, int64_t tap,
                 RunCorners<T>& rc) {
#if defined(__AVX512F__)
  constexpr int64_t kExact = int64_t(1) << 24;  // integers float and int32 hold exactly
  if constexpr (sizeof(T) == 4) {
    const int64_t reach_h = s.pad_h + (s.kernel_h - 1) * s.dilation_h, reach_w = s.pad_w + (s.kernel_w - 1) * s.dilation_w;
    if (s.height < kExact && s.width < kExact && s.height * s.width < (int64_t(1) << 30) &&
        (s.out_h - 1) * s.stride_h + reach_h < kExact && (s.out_w - 1) * s.stride_w + reach_w < kExact &&
        s.pad_h < kExact && s.pad_w < kExact)
      return run_corners_avx512(s, off, msk, p0, np, tap, rc);
  }
#endif
  run_corners_scalar(s, off, msk, p0, np, tap, rc);
}

// The walk shared by the column samplers of every precision: the columns past K get
// `pad`, and each sampling point calls body(destination, corners, weights, channels):
// its four corners are pointers into the channels-last input at the run's first
// channel (a row of zeros for corners off the map, so every point takes the same
// branch-free path), weighted m * bilinear weight.
template <typename Args, typename Col, typename Body>
void sample_block(const Args& a, int64_t b, int64_t p0, int64_t np, int64_t gw, int64_t k0, int64_t kc, Col* col,
                  Col pad, Body&& body) {
  using In = std::remove_cv_t<std::remove_pointer_t<decltype(a.input)>>;
  using T = std::remove_cv_t<std::remove_pointer_t<decltype(a.offset)>>;
  const DeformConvShape& s = a.s;
  const int64_t K = s.taps() * s.in_per_group(), Cin = s.in_channels, hwo = s.out_h * s.out_w;
  if (k0 + kc > K)
    for (int64_t p = 0; p < np; ++p) std::fill(col + p * kc + std::max<int64_t>(K - k0, 0), col + (p + 1) * kc, pad);
  thread_local Buffer<In> zeros;
  if (zeros.size() < size_t(Cin)) zeros.assign(size_t(Cin), In(0));
  const In* image = a.input + b * s.height * s.width * Cin;
  for_each_run(s, gw, k0, kc, [&](int64_t tap, int64_t g, int64_t c0, int64_t c_end, int64_t column) {
    RunCorners<T> rc;
    const int64_t plane = tap_plane(s, b, g, tap);
    run_corners(s, a.offset + plane * 2 * hwo, a.mask ? a.mask + plane * hwo : static_cast<const T*>(nullptr), p0,
                np, tap, rc);
    const In* run = image + c0;
    const auto corner = [&](int q, int64_t p) { return rc.pos[q][p] >= 0 ? run + rc.pos[q][p] * Cin : zeros.data(); };
    // Corners are data-dependent gathers the hardware prefetcher can't guess.
    constexpr int64_t kAhead = 8;
    for (int64_t p = 0; p < np; ++p) {
      if (p + kAhead < np)
        for (int q = 0; q < 4; ++q) __builtin_prefetch(corner(q, p + kAhead));
      const In* src[4] = {corner(0, p), corner(1, p), corner(2, p), corner(3, p)};
      const T w[4] = {rc.w[0][p], rc.w[1][p], rc.w[2][p], rc.w[3][p]};
      body(col + p * kc + column, src, w, c_end - c0);
    }
  });
}

// The forward's tile loop, shared by every precision: per tile and weight group the
// accumulators [pixel][output channel] start at zero, each 256-k chunk is sampled
// (sample(col, b, p0, np, gw, k0, kc)) and multiplied in, one block of B output
// channels at a time (multiply(col, np, kc, gw, block, k0, acc + block * B, ld)), and
// store(acc, ld, b, p0, np, gw) writes the tile out.
template <typename Col, typename Acc, typename Sample, typename Multiply, typename Store>
void forward_tiles(const DeformConvShape& s, int64_t B, int64_t Kp, int64_t cb, int64_t tile_begin, int64_t tile_end,
                   Sample&& sample, Multiply&& multiply, Store&& store) {
  const int64_t hwo = s.out_h * s.out_w, tiles = (hwo + kDeformTilePixels - 1) / kDeformTilePixels, ld = cb * B;
  thread_local Buffer<Col> col;
  thread_local Buffer<Acc> acc;
  col.reserve(kDeformTilePixels * kChunk);
  acc.reserve(kDeformTilePixels * ld);
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    const int64_t b = t / tiles, p0 = (t % tiles) * kDeformTilePixels;
    const int64_t np = std::min(kDeformTilePixels, hwo - p0);
    for (int64_t gw = 0; gw < s.groups; ++gw) {
      std::fill(acc.data(), acc.data() + np * ld, Acc(0));
      for (int64_t k0 = 0; k0 < Kp; k0 += kChunk) {
        const int64_t kc = std::min(kChunk, Kp - k0);
        sample(col.data(), b, p0, np, gw, k0, kc);
        for (int64_t j = 0; j < cb; ++j) multiply(col.data(), np, kc, gw, j, k0, acc.data() + j * B, ld);
      }
      store(acc.data(), ld, b, p0, np, gw);
    }
  }
}

// col[p][0 .. kc) for the block: m * bilinear(input) per channel, zero outside the map
// and beyond K.
template <typename T>
void sample_columns(const DeformConvArgs<T>& a, int64_t b, int64_t p0, int64_t np, int64_t gw, int64_t k0,
                    int64_t kc, T* col) {
  constexpr int64_t L = Vec<T>::size;
  sample_block(a, b, p0, np, gw, k0, kc, col, T(0),
               [&](T* d, const T* const* src, const T* w, int64_t n) {
                 int64_t c = 0;
#if defined(__ARM_FEATURE_SVE)
                 if constexpr (sizeof(T) == 4) {  // predicated: no scalar tail
                   for (; c < n; c += int64_t(svcntw())) {
                     const svbool_t pg = svwhilelt_b32(c, n);
                     svfloat32_t v = svdup_f32(0.f);
                     for (int q = 0; q < 4; ++q) v = svmla_n_f32_x(pg, v, svld1_f32(pg, src[q] + c), w[q]);
                     svst1_f32(pg, d + c, v);
                   }
                   return;
                 }
#endif
                 const Vec<T> w0(w[0]), w1(w[1]), w2(w[2]), w3(w[3]);
                 for (; c + L <= n; c += L) {
                   Vec<T> v = w0 * Vec<T>::load_unaligned(src[0] + c);
                   v = xsimd::fma(w1, Vec<T>::load_unaligned(src[1] + c), v);
                   v = xsimd::fma(w2, Vec<T>::load_unaligned(src[2] + c), v);
                   v = xsimd::fma(w3, Vec<T>::load_unaligned(src[3] + c), v);
                   v.store_unaligned(d + c);
                 }
                 for (; c < n; ++c) {
                   T v = 0;
                   for (int q = 0; q < 4; ++q) v += w[q] * src[q][c];
                   d[c] = v;
                 }
               });
}

// out[co][p] = acc[p][co] + bias[co] for a tile (out rows ld_out apart): float32 through
// the tier's register-tile transpose, then the bias over contiguous rows.
template <typename T>
void store_tile(const T* acc, int64_t ld, int64_t np, int64_t channels, const T* bias, T* out, int64_t ld_out) {
  if constexpr (sizeof(T) == 4) {
    transpose_32(acc, np, channels, ld, out, ld_out);
  } else {
    for (int64_t co = 0; co < channels; ++co)
      for (int64_t p = 0; p < np; ++p) out[co * ld_out + p] = acc[p * ld + co];
  }
  if (!bias) return;
  constexpr int64_t L = Vec<T>::size;
  for (int64_t co = 0; co < channels; ++co) {
    T* o = out + co * ld_out;
    const Vec<T> bv(bias[co]);
    int64_t p = 0;
    for (; p + L <= np; p += L) (Vec<T>::load_unaligned(o + p) + bv).store_unaligned(o + p);
    for (; p < np; ++p) o[p] += bias[co];
  }
}

template <typename T>
struct Geometry {
  int64_t hwo, tiles, cin_g, cout_g, K, Kp, cb;
  explicit Geometry(const DeformConvShape& s)
      : hwo(s.out_h * s.out_w),
        tiles((hwo + kDeformTilePixels - 1) / kDeformTilePixels),
        cin_g(s.in_per_group()),
        cout_g(s.out_per_group()),
        K(s.taps() * cin_g),
        Kp(round_up(K, block_width<T>())),
        cb((cout_g + block_width<T>() - 1) / block_width<T>()) {}
};

}  // namespace

template <typename T>
void deform_conv_forward(const DeformConvArgs<T>& a, int64_t tile_begin, int64_t tile_end, T* out) {
  const DeformConvShape& s = a.s;
  const Geometry<T> g(s);
  constexpr int64_t B = block_width<T>();
  forward_tiles<T, T>(
      s, B, g.Kp, g.cb, tile_begin, tile_end,
      [&](T* col, int64_t b, int64_t p0, int64_t np, int64_t gw, int64_t k0, int64_t kc) {
        sample_columns(a, b, p0, np, gw, k0, kc, col);
      },
      [&](const T* col, int64_t np, int64_t kc, int64_t gw, int64_t j, int64_t k0, T* acc, int64_t ld) {
        gemm_block(np, col, kc, 1, a.weight + ((gw * g.cb + j) * g.Kp + k0) * B, B, kc, acc, ld);
      },
      [&](const T* acc, int64_t ld, int64_t b, int64_t p0, int64_t np, int64_t gw) {
        store_tile(acc, ld, np, g.cout_g, a.bias ? a.bias + gw * g.cout_g : nullptr,
                   out + (b * s.out_channels + gw * g.cout_g) * g.hwo + p0, g.hwo);
      });
}

template <typename T>
void deform_conv_backward(const DeformConvArgs<T>& a, const T* grad, int64_t b, int64_t tile_begin,
                          int64_t tile_end, T* grad_input_nhwc, T* grad_weight, T* grad_offset, T* grad_mask) {
  const DeformConvShape& s = a.s;
  const Geometry<T> g(s);
  constexpr int64_t B = block_width<T>();
  constexpr int64_t L = Vec<T>::size;
  const int64_t ld = g.cb * B, Cin = s.in_channels;
  const T* image = a.input + b * s.height * s.width * Cin;
  thread_local Buffer<T> gt, col, gcol;
  gt.reserve(kDeformTilePixels * ld);
  col.reserve(kDeformTilePixels * kChunk);
  gcol.reserve(kDeformTilePixels * kChunk);
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    const int64_t p0 = t * kDeformTilePixels, np = std::min(kDeformTilePixels, g.hwo - p0);
    for (int64_t gw = 0; gw < s.groups; ++gw) {
      // The tile's output gradient as [pixel][output channel], zero-padded to whole blocks.
      std::fill(gt.data(), gt.data() + np * ld, T(0));
      for (int64_t co = 0; co < g.cout_g; ++co) {
        const T* src = grad + (b * s.out_channels + gw * g.cout_g + co) * g.hwo + p0;
        for (int64_t p = 0; p < np; ++p) gt[p * ld + co] = src[p];
      }
      for (int64_t k0 = 0; k0 < g.Kp; k0 += kChunk) {
        const int64_t kc = std::min(kChunk, g.Kp - k0);
        // Columns' gradient: gcol[p][k] = sum_co gt[p][co] * W[co][k].
        std::fill(gcol.data(), gcol.data() + np * kc, T(0));
        for (int64_t kb = 0; kb < kc; kb += B)
          gemm_block(np, gt.data(), ld, 1, a.weight_t + ((gw * (g.Kp / B) + (k0 + kb) / B) * g.cout_g) * B, B,
                     g.cout_g, gcol.data() + kb, kc);
        // Weight gradient: dW[k][co] += sum_p col[p][k] * gt[p][co].
        sample_columns(a, b, p0, np, gw, k0, kc, col.data());
        for (int64_t j = 0; j < g.cb; ++j)
          gemm_block(kc, col.data(), 1, kc, gt.data() + j * B, ld, np, grad_weight + ((gw * g.cb + j) * g.Kp + k0) * B,
                     B);
        // Input, offset and mask gradients of each sampling point.
        for_each_point(a, b, p0, np, gw, k0, kc,
                       [&](int64_t p, const Point<T>& pt, T m, int64_t c0, int64_t n, int64_t column, int64_t og,
                           int64_t tap) {
                         if (!pt.touches) return;
                         const T* gc = gcol.data() + p * kc + column;
                         T dot[4] = {0, 0, 0, 0};
                         for (int q = 0; q < 4; ++q) {
                           if (!pt.valid[q]) continue;
                           const T* v = image + pt.pos[q] * Cin + c0;
                           T* gi = grad_input_nhwc + pt.pos[q] * Cin + c0;
                           const T wq = m * pt.w[q];
                           const bool scatter = pt.sampled;
                           const Vec<T> wv(wq);
                           Vec<T> d(T(0));
                           int64_t c = 0;
                           for (; c + L <= n; c += L) {
                             const Vec<T> gv = Vec<T>::load_unaligned(gc + c);
                             d = xsimd::fma(gv, Vec<T>::load_unaligned(v + c), d);
                             if (scatter) xsimd::fma(wv, gv, Vec<T>::load_unaligned(gi + c)).store_unaligned(gi + c);
                           }
                           T tail = 0;
                           for (; c < n; ++c) {
                             tail += gc[c] * v[c];
                             if (scatter) gi[c] += wq * gc[c];
                           }
                           dot[q] = xsimd::hadd(d) + tail;
                         }
                         const int64_t pix = p0 + p;
                         const T hy = T(1) - pt.ly, hx = T(1) - pt.lx;
                         // torchvision's coordinate weights, summed over the channels.
                         const T gy = hx * (dot[2] - dot[0]) + pt.lx * (dot[3] - dot[1]);
                         const T gx = hy * (dot[1] - dot[0]) + pt.ly * (dot[3] - dot[2]);
                         T* go = grad_offset + tap_plane(s, b, og, tap) * 2 * g.hwo + pix;
                         go[0] += m * gy;
                         go[g.hwo] += m * gx;
                         if (grad_mask && pt.sampled)
                           grad_mask[tap_plane(s, b, og, tap) * g.hwo + pix] +=
                               pt.w[0] * dot[0] + pt.w[1] * dot[1] + pt.w[2] * dot[2] + pt.w[3] * dot[3];
                       });
      }
    }
  }
}

namespace {

// C[i][0 .. 64) += sum over k quads q of A[i][4q .. 4q+4) (u8) . B[q][0 .. 64)[4] (s8).
template <int MR>
void micro_kernel_u8(const uint8_t* a, int64_t lda, const int8_t* b, int64_t kquads, int32_t* c, int64_t ldc) {
#if defined(__AVX512VNNI__)
  __m512i acc[MR][4];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_loadu_si512(c + i * ldc + 16 * j);
  for (int64_t q = 0; q < kquads; ++q) {
    __m512i bv[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) bv[j] = _mm512_loadu_si512(b + q * 256 + 64 * j);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      int32_t quad;
      std::memcpy(&quad, a + i * lda + 4 * q, 4);
      const __m512i av = _mm512_set1_epi32(quad);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], av, bv[j]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) _mm512_storeu_si512(c + i * ldc + 16 * j, acc[i][j]);
#else
  // Each 32-bit word holds one output channel's four s8 weights: shifts sign-extend
  // them, so the j loop vectorises over words (the same integers as vpdpbusd).
  for (int i = 0; i < MR; ++i) {
    int32_t* ci = c + i * ldc;
    for (int64_t q = 0; q < kquads; ++q) {
      const uint8_t* ai = a + i * lda + 4 * q;
      const int32_t a0 = ai[0], a1 = ai[1], a2 = ai[2], a3 = ai[3];
      const int8_t* bq = b + q * 256;
#if defined(__AVX2__)
      const __m256i va0 = _mm256_set1_epi32(a0), va1 = _mm256_set1_epi32(a1), va2 = _mm256_set1_epi32(a2),
                    va3 = _mm256_set1_epi32(a3);
      for (int j = 0; j < 64; j += 8) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bq + 4 * j));
        __m256i sum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ci + j));
        sum = _mm256_add_epi32(sum, _mm256_mullo_epi32(va0, _mm256_srai_epi32(_mm256_slli_epi32(w, 24), 24)));
        sum = _mm256_add_epi32(sum, _mm256_mullo_epi32(va1, _mm256_srai_epi32(_mm256_slli_epi32(w, 16), 24)));
        sum = _mm256_add_epi32(sum, _mm256_mullo_epi32(va2, _mm256_srai_epi32(_mm256_slli_epi32(w, 8), 24)));
        sum = _mm256_add_epi32(sum, _mm256_mullo_epi32(va3, _mm256_srai_epi32(w, 24)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(ci + j), sum);
      }
#else
      for (int j = 0; j < 64; ++j) {
        uint32_t u;
        std::memcpy(&u, bq + 4 * j, 4);
        ci[j] += a0 * int32_t(int8_t(u)) + a1 * int32_t(int8_t(u >> 8)) + a2 * int32_t(int8_t(u >> 16)) +
                 a3 * int32_t(int8_t(u >> 24));
      }
#endif
    }
  }
#endif
}

void gemm_block_u8(int64_t m, const uint8_t* a, int64_t lda, const int8_t* b, int64_t kquads, int32_t* c,
                   int64_t ldc) {
  for_row_groups(m, [&](auto rows, int64_t i) {
    micro_kernel_u8<rows>(a + i * lda, lda, b, kquads, c + i * ldc, ldc);
  });
}

uint8_t quantize_u8(float v, float inv_scale) {
  const float q = std::nearbyint(v * inv_scale);  // round half to even, as the vector path
  return uint8_t(int32_t(std::min(127.f, std::max(-127.f, q))) + 128);
}

// The u8 column block [np][kc]: float32 bilinear sums quantized once (128 = zero).
void sample_columns_u8(const DeformConvArgsU8& a, int64_t b, int64_t p0, int64_t np, int64_t gw, int64_t k0,
                       int64_t kc, uint8_t* col) {
  const float inv = a.act_inv_scale;
  sample_block(a, b, p0, np, gw, k0, kc, col, uint8_t(128),
               [&](uint8_t* d, const float* const* src, const float* w, int64_t n) {
                 int64_t c = 0;
#if defined(__AVX512F__)
                 const __m512 vinv = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.f), hi = _mm512_set1_ps(127.f);
                 for (; c + 16 <= n; c += 16) {
                   __m512 v = _mm512_setzero_ps();
                   for (int q = 0; q < 4; ++q) v = _mm512_fmadd_ps(_mm512_set1_ps(w[q]), _mm512_loadu_ps(src[q] + c), v);
                   v = _mm512_min_ps(hi, _mm512_max_ps(lo, _mm512_roundscale_ps(_mm512_mul_ps(v, vinv),
                                                                                 _MM_FROUND_TO_NEAREST_INT)));
                   const __m512i u = _mm512_add_epi32(_mm512_cvtps_epi32(v), _mm512_set1_epi32(128));
                   _mm_storeu_si128(reinterpret_cast<__m128i*>(d + c), _mm512_cvtepi32_epi8(u));
                 }
#endif
                 for (; c < n; ++c) {
                   float v = 0;
                   for (int q = 0; q < 4; ++q) v = std::fma(w[q], src[q][c], v);
                   d[c] = quantize_u8(v, inv);
                 }
               });
}

}  // namespace

void deform_conv_forward_u8(const DeformConvArgsU8& a, int64_t tile_begin, int64_t tile_end, float* out) {
  const DeformConvShape& s = a.s;
  const Geometry<float> g(s);
  constexpr int64_t B = 64;  // output channels per weight block
  forward_tiles<uint8_t, int32_t>(
      s, B, g.Kp, g.cb, tile_begin, tile_end,
      [&](uint8_t* col, int64_t b, int64_t p0, int64_t np, int64_t gw, int64_t k0, int64_t kc) {
        sample_columns_u8(a, b, p0, np, gw, k0, kc, col);
      },
      [&](const uint8_t* col, int64_t np, int64_t kc, int64_t gw, int64_t j, int64_t k0, int32_t* acc, int64_t ld) {
        gemm_block_u8(np, col, kc, a.weight + ((gw * g.cb + j) * g.Kp + k0) * B, kc / 4, acc, ld);
      },
      [&](const int32_t* acc, int64_t ld, int64_t b, int64_t p0, int64_t np, int64_t gw) {
        for (int64_t co = 0; co < g.cout_g; ++co) {
          const int64_t oc = gw * g.cout_g + co;
          const int32_t zero = a.zero_sums[oc];
          const float scale = a.out_scale[oc], bias = a.bias ? a.bias[oc] : 0.f;
          float* o = out + (b * s.out_channels + oc) * g.hwo + p0;
          for (int64_t p = 0; p < np; ++p) o[p] = float(acc[p * ld + co] - zero) * scale + bias;
        }
      });
}

#if defined(__AVX512BF16__)
namespace {

// C[i][0 .. 64) += sum over k pairs q of A[i][2q .. 2q+2) . B[q][0 .. 64)[2], i < MR.
template <int MR>
void micro_kernel_bf16(const uint16_t* a, int64_t lda, const uint16_t* b, int64_t kpairs, float* c, int64_t ldc) {
  __m512 acc[MR][4];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_loadu_ps(c + i * ldc + 16 * j);
  for (int64_t q = 0; q < kpairs; ++q) {
    __m512bh bv[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) bv[j] = (__m512bh)_mm512_loadu_si512(b + q * 128 + 32 * j);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      int32_t pair;
      std::memcpy(&pair, a + i * lda + 2 * q, 4);
      const __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], av, bv[j]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) _mm512_storeu_ps(c + i * ldc + 16 * j, acc[i][j]);
}

void gemm_block_bf16(int64_t m, const uint16_t* a, int64_t lda, const uint16_t* b, int64_t kpairs, float* c,
                     int64_t ldc) {
  for_row_groups(m, [&](auto rows, int64_t i) {
    micro_kernel_bf16<rows>(a + i * lda, lda, b, kpairs, c + i * ldc, ldc);
  });
}

uint16_t round_to_bf16(float f) {  // nearest even, as vcvtneps2bf16 (inputs here are finite or NaN)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// The bfloat16 column block [np][kc]: float32 bilinear sums of the bfloat16 map, rounded once.
void sample_columns_bf16(const DeformConvArgsBf16& a, int64_t b, int64_t p0, int64_t np, int64_t gw, int64_t k0,
                         int64_t kc, uint16_t* col) {
  sample_block(a, b, p0, np, gw, k0, kc, col, uint16_t(0),
               [&](uint16_t* d, const uint16_t* const* src, const float* w, int64_t n) {
                 int64_t c = 0;
                 const __m512 w0 = _mm512_set1_ps(w[0]), w1 = _mm512_set1_ps(w[1]), w2 = _mm512_set1_ps(w[2]),
                              w3 = _mm512_set1_ps(w[3]);
                 for (; c + 16 <= n; c += 16) {
                   __m512 v = _mm512_mul_ps(w0, load_half<true>(src[0] + c));
                   v = _mm512_fmadd_ps(w1, load_half<true>(src[1] + c), v);
                   v = _mm512_fmadd_ps(w2, load_half<true>(src[2] + c), v);
                   v = _mm512_fmadd_ps(w3, load_half<true>(src[3] + c), v);
                   _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + c), (__m256i)_mm512_cvtneps_pbh(v));
                 }
                 for (; c < n; ++c) {
                   float v = 0;
                   for (int q = 0; q < 4; ++q) v += w[q] * bf16_to_float(src[q][c]);
                   d[c] = round_to_bf16(v);
                 }
               });
}

}  // namespace

void deform_conv_forward_bf16(const DeformConvArgsBf16& a, int64_t tile_begin, int64_t tile_end, uint16_t* out) {
  const DeformConvShape& s = a.s;
  const Geometry<float> g(s);
  constexpr int64_t B = block_width<float>();  // 64 output channels per weight block
  thread_local Buffer<float> rows;
  rows.reserve(kDeformTilePixels * g.cout_g);
  forward_tiles<uint16_t, float>(
      s, B, g.Kp, g.cb, tile_begin, tile_end,
      [&](uint16_t* col, int64_t b, int64_t p0, int64_t np, int64_t gw, int64_t k0, int64_t kc) {
        sample_columns_bf16(a, b, p0, np, gw, k0, kc, col);
      },
      [&](const uint16_t* col, int64_t np, int64_t kc, int64_t gw, int64_t j, int64_t k0, float* acc, int64_t ld) {
        gemm_block_bf16(np, col, kc, a.weight + ((gw * g.cb + j) * g.Kp + k0) * B, kc / 2, acc, ld);
      },
      [&](const float* acc, int64_t ld, int64_t b, int64_t p0, int64_t np, int64_t gw) {
        // [channel][pixel] rows in float32 (bias added), then rounded to bfloat16 once.
        store_tile(acc, ld, np, g.cout_g, a.bias ? a.bias + gw * g.cout_g : nullptr, rows.data(), kDeformTilePixels);
        for (int64_t co = 0; co < g.cout_g; ++co)
          float_to_bfloat16(rows.data() + co * kDeformTilePixels, np,
                            out + (b * s.out_channels + gw * g.cout_g + co) * g.hwo + p0);
      });
}
#endif  // __AVX512BF16__

template void deform_conv_forward<float>(const DeformConvArgs<float>&, int64_t, int64_t, float*);
template void deform_conv_forward<double>(const DeformConvArgs<double>&, int64_t, int64_t, double*);
template void deform_conv_backward<float>(const DeformConvArgs<float>&, const float*, int64_t, int64_t, int64_t,
                                          float*, float*, float*, float*);
template void deform_conv_backward<double>(const DeformConvArgs<double>&, const double*, int64_t, int64_t, int64_t,
                                           double*, double*, double*, double*);

}  // namespace tvops::cpu::TVOPS_CPU_TIER
