#include "kernels/cpu/transpose.h"

#include <xsimd/xsimd.hpp>

#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace tvops::cpu::TVOPS_CPU_TIER {

namespace {

#if defined(__AVX512F__)
constexpr int64_t kTile = 16;

// 16x16 floats: 32-bit then 64-bit interleaves inside each 128-bit lane (4x4
// transposes), then two rounds of 128-bit lane shuffles across the four row groups.
inline void tile(const uint32_t* src, int64_t sld, uint32_t* dst, int64_t dld) {
  const float* s = reinterpret_cast<const float*>(src);  // intrinsics may alias
  float* d = reinterpret_cast<float*>(dst);
  // Unrolled, with each row pair interleaved as it arrives: 16 + 2 live registers, no
  // spill, and each of the 16 loads is its own instruction whose address steps by one
  // tile from call to call (a stride the hardware prefetchers follow). As a loop of
  // one load through a stack array, this memory-bound copy's speed varied by 25% with
  // where the linker put the code (rp7's NCHW -> NHWC copy: 27 against 39 ms).
  __m512 r[16], t[16];
#pragma GCC unroll 16
  for (int i = 0; i < 8; ++i) {
    const __m512 a = _mm512_loadu_ps(s + (2 * i) * sld), b = _mm512_loadu_ps(s + (2 * i + 1) * sld);
    t[2 * i] = _mm512_unpacklo_ps(a, b);
    t[2 * i + 1] = _mm512_unpackhi_ps(a, b);
  }
  // r[4g + k], 128-bit lane L: column 4L + k of rows 4g .. 4g + 3.
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {
    const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * g + 2]), e = _mm512_castps_pd(t[4 * g + 3]);
    r[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
    r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    const __m512 v0 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x44), v1 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xEE);
    const __m512 w0 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x44);
    const __m512 w1 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xEE);
    _mm512_storeu_ps(d + (0 + k) * dld, _mm512_shuffle_f32x4(v0, w0, 0x88));
    _mm512_storeu_ps(d + (4 + k) * dld, _mm512_shuffle_f32x4(v0, w0, 0xDD));
    _mm512_storeu_ps(d + (8 + k) * dld, _mm512_shuffle_f32x4(v1, w1, 0x88));
    _mm512_storeu_ps(d + (12 + k) * dld, _mm512_shuffle_f32x4(v1, w1, 0xDD));
  }
}
#elif defined(__AVX2__)
constexpr int64_t kTile = 8;

// 8x8 floats: 4x4 transposes inside each 128-bit lane, then a lane swap.
inline void tile(const uint32_t* src, int64_t sld, uint32_t* dst, int64_t dld) {
  const float* s = reinterpret_cast<const float*>(src);
  float* d = reinterpret_cast<float*>(dst);
  __m256 r[8], t[8];  // unrolled, rows interleaved as they arrive: see the AVX-512 tile
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    const __m256 a = _mm256_loadu_ps(s + (2 * i) * sld), b = _mm256_loadu_ps(s + (2 * i + 1) * sld);
    t[2 * i] = _mm256_unpacklo_ps(a, b);
    t[2 * i + 1] = _mm256_unpackhi_ps(a, b);
  }
#pragma GCC unroll 2
  for (int g = 0; g < 2; ++g) {
    const __m256d a = _mm256_castps_pd(t[4 * g]), b = _mm256_castps_pd(t[4 * g + 1]);
    const __m256d c = _mm256_castps_pd(t[4 * g + 2]), e = _mm256_castps_pd(t[4 * g + 3]);
    r[4 * g] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c));
    r[4 * g + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
    r[4 * g + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, e));
    r[4 * g + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, e));
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    _mm256_storeu_ps(d + k * dld, _mm256_permute2f128_ps(r[k], r[4 + k], 0x20));
    _mm256_storeu_ps(d + (4 + k) * dld, _mm256_permute2f128_ps(r[k], r[4 + k], 0x31));
  }
}
#else
// No shuffle kernel for this tier (ARM): a plain tile loop the compiler can unroll.
constexpr int64_t kTile = 8;

inline void tile(const uint32_t* s, int64_t sld, uint32_t* d, int64_t dld) {
  for (int64_t j = 0; j < kTile; ++j)
    for (int64_t i = 0; i < kTile; ++i) d[j * dld + i] = s[i * sld + j];
}
#endif

// 1- and 2-byte elements (quantized and half maps): an N x N tile of 16-byte rows
// (N = 16 / sizeof(E)) by log2(N) rounds of SSE2 interleaves of doubling width, which
// leave column j in register bitreverse(j).
#if defined(__SSE2__)
template <int Bytes>  // interleave width of one round
inline void interleave(const __m128i& a, const __m128i& b, __m128i& lo, __m128i& hi) {
  if constexpr (Bytes == 1) lo = _mm_unpacklo_epi8(a, b), hi = _mm_unpackhi_epi8(a, b);
  if constexpr (Bytes == 2) lo = _mm_unpacklo_epi16(a, b), hi = _mm_unpackhi_epi16(a, b);
  if constexpr (Bytes == 4) lo = _mm_unpacklo_epi32(a, b), hi = _mm_unpackhi_epi32(a, b);
  if constexpr (Bytes == 8) lo = _mm_unpacklo_epi64(a, b), hi = _mm_unpackhi_epi64(a, b);
}

#if defined(__AVX2__)
template <int Bytes>  // the same within each 128-bit lane of two 256-bit rows
inline void interleave(const __m256i& a, const __m256i& b, __m256i& lo, __m256i& hi) {
  if constexpr (Bytes == 2) lo = _mm256_unpacklo_epi16(a, b), hi = _mm256_unpackhi_epi16(a, b);
  if constexpr (Bytes == 4) lo = _mm256_unpacklo_epi32(a, b), hi = _mm256_unpackhi_epi32(a, b);
  if constexpr (Bytes == 8) lo = _mm256_unpacklo_epi64(a, b), hi = _mm256_unpackhi_epi64(a, b);
}
#endif

// The rounds over N = 16 / sizeof(E) rows (128-bit registers, or 256-bit ones whose
// lanes transpose two tiles side by side); the result lands in `out` for an odd count.
template <typename E, int Bytes = sizeof(E), typename V>
inline void round_from(V* in, V* out) {
  constexpr int N = 16 / sizeof(E);
#pragma GCC unroll 8
  for (int k = 0; k < N / 2; ++k) interleave<Bytes>(in[2 * k], in[2 * k + 1], out[k], out[k + N / 2]);
  if constexpr (Bytes < 8) round_from<E, 2 * Bytes>(out, in);
}

template <typename E>
inline void sse_tile(const E* s, int64_t sld, E* d, int64_t dld) {
  constexpr int N = 16 / sizeof(E), bits = N == 16 ? 4 : 3;
  __m128i r[N], t[N];
  for (int i = 0; i < N; ++i) r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i * sld));
  round_from<E>(r, t);  // rounds alternate r -> t -> r ...: the result is in r (even count) or t
  const __m128i* result = bits % 2 == 0 ? r : t;
  for (int i = 0; i < N; ++i) {
    int column = 0;
    for (int b = 0; b < bits; ++b) column |= ((i >> b) & 1) << (bits - 1 - b);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + column * dld), result[i]);
  }
}
constexpr int64_t kTile8 = 16;
inline void tile8(const uint8_t* s, int64_t sld, uint8_t* d, int64_t dld) { sse_tile(s, sld, d, dld); }
#if defined(__AVX2__)
// 16x16 2-byte elements: the 8x8 SSE network runs inside both 128-bit lanes of the
// rows 0-7 and 8-15 (lane 1 holds columns 8-15), and one lane shuffle joins the halves.
// Twice the tile of the SSE kernel for about 60% of its instructions per element.
constexpr int64_t kTile16 = 16;
inline void tile16(const uint16_t* s, int64_t sld, uint16_t* d, int64_t dld) {
  __m256i r[16], t[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i * sld));
  round_from<uint16_t>(r, t);  // three rounds: r -> t -> r -> t
  round_from<uint16_t>(r + 8, t + 8);
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    const int column = ((i & 1) << 2) | (i & 2) | ((i >> 2) & 1);  // bit-reversed
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + column * dld), _mm256_permute2x128_si256(t[i], t[8 + i], 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + (column + 8) * dld),
                        _mm256_permute2x128_si256(t[i], t[8 + i], 0x31));
  }
}
#else
constexpr int64_t kTile16 = 8;
inline void tile16(const uint16_t* s, int64_t sld, uint16_t* d, int64_t dld) { sse_tile(s, sld, d, dld); }
#endif
#else
// No shuffle kernel for this tier (ARM): plain tile loops.
constexpr int64_t kTile8 = 8, kTile16 = 8;

template <typename E>
inline void plain_tile(const E* s, int64_t sld, E* d, int64_t dld) {
  for (int64_t j = 0; j < 8; ++j)
    for (int64_t i = 0; i < 8; ++i) d[j * dld + i] = s[i * sld + j];
}
inline void tile8(const uint8_t* s, int64_t sld, uint8_t* d, int64_t dld) { plain_tile(s, sld, d, dld); }
inline void tile16(const uint16_t* s, int64_t sld, uint16_t* d, int64_t dld) { plain_tile(s, sld, d, dld); }
#endif

template <typename E, int64_t Tile, typename TileFn>
void transpose_tiled(const E* s, int64_t rows, int64_t cols, int64_t src_ld, E* d, int64_t dst_ld, TileFn tile_fn) {
  const int64_t rows_t = rows - rows % Tile, cols_t = cols - cols % Tile;
  auto edge = [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = j0; j < j1; ++j) d[j * dst_ld + i] = s[i * src_ld + j];
  };
  for (int64_t i = 0; i < rows_t; i += Tile) {
    for (int64_t j = 0; j < cols_t; j += Tile) tile_fn(s + i * src_ld + j, src_ld, d + j * dst_ld + i, dst_ld);
    edge(i, i + Tile, cols_t, cols);
  }
  edge(rows_t, rows, 0, cols);
}

}  // namespace

void transpose_8(const void* src, int64_t rows, int64_t cols, int64_t src_ld, void* dst, int64_t dst_ld) {
  transpose_tiled<uint8_t, kTile8>(static_cast<const uint8_t*>(src), rows, cols, src_ld, static_cast<uint8_t*>(dst),
                                   dst_ld, tile8);
}

void transpose_16(const void* src, int64_t rows, int64_t cols, int64_t src_ld, void* dst, int64_t dst_ld) {
  transpose_tiled<uint16_t, kTile16>(static_cast<const uint16_t*>(src), rows, cols, src_ld,
                                     static_cast<uint16_t*>(dst), dst_ld, tile16);
}

void transpose_32(const void* src, int64_t rows, int64_t cols, int64_t src_ld, void* dst, int64_t dst_ld) {
  transpose_tiled<uint32_t, kTile>(static_cast<const uint32_t*>(src), rows, cols, src_ld, static_cast<uint32_t*>(dst),
                                   dst_ld, tile);
}

void float_to_bfloat16(const float* in, int64_t n, uint16_t* out) {
  using U = xsimd::batch<uint32_t>;
  constexpr int64_t L = U::size;
  auto one = [](uint32_t u) -> uint16_t {
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
    return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  };
  alignas(64) uint32_t r[L];
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    using F = xsimd::batch<float>;
    const F f = F::load_unaligned(in + i);
    const U u = xsimd::bitwise_cast<U>(f);  // the float bits
    const U rounded = (u + U(0x7fffu) + ((u >> 16) & U(1u))) >> 16;
    // Blend as floats: xsimd's integer select doesn't build at -O0 on avx512bw.
    const F picked = xsimd::select(f != f, xsimd::bitwise_cast<F>((u >> 16) | U(0x40u)), xsimd::bitwise_cast<F>(rounded));
    xsimd::bitwise_cast<U>(picked).store_aligned(r);
    for (int64_t j = 0; j < L; ++j) out[i + j] = static_cast<uint16_t>(r[j]);
  }
  for (; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, in + i, 4);
    out[i] = one(u);
  }
}

}  // namespace tvops::cpu::TVOPS_CPU_TIER
