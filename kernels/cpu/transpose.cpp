#include "kernels/cpu/transpose.h"

#if defined(__AVX2__)
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
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(s + i * sld);
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // r[4g + k], 128-bit lane L: column 4L + k of rows 4g .. 4g + 3.
  for (int g = 0; g < 4; ++g) {
    const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * g + 2]), e = _mm512_castps_pd(t[4 * g + 3]);
    r[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
    r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
  }
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
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * sld);
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 2; ++g) {
    const __m256d a = _mm256_castps_pd(t[4 * g]), b = _mm256_castps_pd(t[4 * g + 1]);
    const __m256d c = _mm256_castps_pd(t[4 * g + 2]), e = _mm256_castps_pd(t[4 * g + 3]);
    r[4 * g] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c));
    r[4 * g + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
    r[4 * g + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, e));
    r[4 * g + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, e));
  }
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

// Elements are moved as 4-byte payloads, so NaN bit patterns survive.
inline void edge(const uint32_t* s, int64_t rows, int64_t cols, int64_t sld, uint32_t* d, int64_t dld) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) d[j * dld + i] = s[i * sld + j];
}

}  // namespace

void transpose_32(const void* src, int64_t rows, int64_t cols, int64_t src_ld, void* dst, int64_t dst_ld) {
  const auto* s = static_cast<const uint32_t*>(src);
  auto* d = static_cast<uint32_t*>(dst);
  const int64_t rows_t = rows - rows % kTile, cols_t = cols - cols % kTile;
  for (int64_t i = 0; i < rows_t; i += kTile) {
    for (int64_t j = 0; j < cols_t; j += kTile)
      tile(s + i * src_ld + j, src_ld, d + j * dst_ld + i, dst_ld);
    edge(s + i * src_ld + cols_t, kTile, cols - cols_t, src_ld, d + cols_t * dst_ld + i, dst_ld);
  }
  edge(s + rows_t * src_ld, rows - rows_t, cols, src_ld, d + rows_t, dst_ld);
}

}  // namespace tvops::cpu::TVOPS_CPU_TIER
