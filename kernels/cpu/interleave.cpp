#include "kernels/cpu/interleave.h"

#if defined(__SSSE3__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace tvops::cpu::TVOPS_CPU_TIER {

namespace {

template <typename T>
void deinterleave_scalar(const T* src, int64_t begin, int64_t n, int channels, T* const* planes) {
  for (int64_t i = begin; i < n; ++i)
    for (int c = 0; c < channels; ++c) planes[c][i] = src[i * channels + c];
}

#if defined(__SSSE3__)
// 16 RGB pixels per step: each of the three 16-byte loads holds parts of every
// plane; pshufb gathers them (-1 lanes give 0) and ORs assemble the 16-byte rows.
// Stores: plain, or non-temporal when the caller asks (outputs larger than the caches:
// no read-for-ownership of lines that are only written) and the planes are aligned.
template <bool Stream>
inline void store16(uint8_t* p, __m128i v) {
  if (Stream)
    _mm_stream_si128(reinterpret_cast<__m128i*>(p), v);
  else
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v);
}

template <bool Stream>
inline void deinterleave3_sse(const uint8_t* src, int64_t n, uint8_t* const* planes, int64_t& i) {
  const __m128i m[9] = {
      _mm_setr_epi8(0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1),
      _mm_setr_epi8(-1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14, -1, -1, -1, -1, -1),
      _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 4, 7, 10, 13),
      _mm_setr_epi8(1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1),
      _mm_setr_epi8(-1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1),
      _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14),
      _mm_setr_epi8(2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1),
      _mm_setr_epi8(-1, -1, -1, -1, -1, 1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1),
      _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15),
  };
  for (; i + 16 <= n; i += 16) {
    const uint8_t* s = src + 3 * i;
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 32));
    for (int p = 0; p < 3; ++p) {
      const __m128i v = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a, m[3 * p]), _mm_shuffle_epi8(b, m[3 * p + 1])),
                                     _mm_shuffle_epi8(c, m[3 * p + 2]));
      store16<Stream>(planes[p] + i, v);
    }
  }
}

// 16 pixels of 4 channels: pshufb groups each load by channel (4 bytes each), then
// a 4x4 transpose of 32-bit words puts each channel's 16 bytes in one register.
template <bool Stream>
inline void deinterleave4_sse(const uint8_t* src, int64_t n, uint8_t* const* planes, int64_t& i) {
  const __m128i group = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (; i + 16 <= n; i += 16) {
    __m128i r[4];
    for (int k = 0; k < 4; ++k)
      r[k] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 4 * i + 16 * k)), group);
    const __m128i t0 = _mm_unpacklo_epi32(r[0], r[1]), t1 = _mm_unpackhi_epi32(r[0], r[1]);
    const __m128i t2 = _mm_unpacklo_epi32(r[2], r[3]), t3 = _mm_unpackhi_epi32(r[2], r[3]);
    store16<Stream>(planes[0] + i, _mm_unpacklo_epi64(t0, t2));
    store16<Stream>(planes[1] + i, _mm_unpackhi_epi64(t0, t2));
    store16<Stream>(planes[2] + i, _mm_unpacklo_epi64(t1, t3));
    store16<Stream>(planes[3] + i, _mm_unpackhi_epi64(t1, t3));
  }
}

// 16 pixels of 2 channels: even / odd bytes.
inline void deinterleave2_sse(const uint8_t* src, int64_t n, uint8_t* const* planes, int64_t& i) {
  const __m128i low = _mm_set1_epi16(0x00ff);
  for (; i + 16 <= n; i += 16) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i + 16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(planes[0] + i),
                     _mm_packus_epi16(_mm_and_si128(a, low), _mm_and_si128(b, low)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(planes[1] + i),
                     _mm_packus_epi16(_mm_srli_epi16(a, 8), _mm_srli_epi16(b, 8)));
  }
}

// The encoders' direction for RGB: the inverse shuffles (each output register
// gathers from the three planes).
inline void interleave3_sse(const uint8_t* const* planes, int64_t n, uint8_t* dst, int64_t& i) {
  const __m128i m[9] = {
      _mm_setr_epi8(0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1, 5),
      _mm_setr_epi8(-1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1),
      _mm_setr_epi8(-1, -1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1),
      _mm_setr_epi8(-1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10, -1),
      _mm_setr_epi8(5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10),
      _mm_setr_epi8(-1, 5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1),
      _mm_setr_epi8(-1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1, -1),
      _mm_setr_epi8(-1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1),
      _mm_setr_epi8(10, -1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15),
  };
  for (; i + 16 <= n; i += 16) {
    const __m128i r = _mm_loadu_si128(reinterpret_cast<const __m128i*>(planes[0] + i));
    const __m128i g = _mm_loadu_si128(reinterpret_cast<const __m128i*>(planes[1] + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(planes[2] + i));
    const __m128i o0 = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(r, m[0]), _mm_shuffle_epi8(g, m[1])),
                                    _mm_shuffle_epi8(b, m[2]));
    const __m128i o1 = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(r, m[3]), _mm_shuffle_epi8(g, m[4])),
                                    _mm_shuffle_epi8(b, m[5]));
    const __m128i o2 = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(r, m[6]), _mm_shuffle_epi8(g, m[7])),
                                    _mm_shuffle_epi8(b, m[8]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 3 * i), o0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 3 * i + 16), o1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 3 * i + 32), o2);
  }
}
#endif

}  // namespace

namespace {

void deinterleave(const uint8_t* src, int64_t n, int channels, uint8_t* const* planes, bool stream) {
  int64_t i = 0;
  if (channels == 1) {
    for (; i < n; ++i) planes[0][i] = src[i];
    return;
  }
#if defined(__SSSE3__)
  uintptr_t bits = 0;
  for (int c = 0; c < channels; ++c) bits |= reinterpret_cast<uintptr_t>(planes[c]);
  stream = stream && (bits & 15) == 0;
  if (channels == 3) stream ? deinterleave3_sse<true>(src, n, planes, i) : deinterleave3_sse<false>(src, n, planes, i);
  if (channels == 4) stream ? deinterleave4_sse<true>(src, n, planes, i) : deinterleave4_sse<false>(src, n, planes, i);
  if (channels == 2) deinterleave2_sse(src, n, planes, i);
#elif defined(__ARM_NEON)
  if (channels == 3) {
    for (; i + 16 <= n; i += 16) {
      const uint8x16x3_t v = vld3q_u8(src + 3 * i);
      vst1q_u8(planes[0] + i, v.val[0]), vst1q_u8(planes[1] + i, v.val[1]), vst1q_u8(planes[2] + i, v.val[2]);
    }
  } else if (channels == 4) {
    for (; i + 16 <= n; i += 16) {
      const uint8x16x4_t v = vld4q_u8(src + 4 * i);
      for (int c = 0; c < 4; ++c) vst1q_u8(planes[c] + i, v.val[c]);
    }
  } else if (channels == 2) {
    for (; i + 16 <= n; i += 16) {
      const uint8x16x2_t v = vld2q_u8(src + 2 * i);
      vst1q_u8(planes[0] + i, v.val[0]), vst1q_u8(planes[1] + i, v.val[1]);
    }
  }
#endif
  (void)stream;
  deinterleave_scalar(src, i, n, channels, planes);
}

}  // namespace

void deinterleave_u8(const uint8_t* src, int64_t n, int channels, uint8_t* const* planes) {
  deinterleave(src, n, channels, planes, false);
}

void deinterleave_u8_stream(const uint8_t* src, int64_t n, int channels, uint8_t* const* planes) {
  deinterleave(src, n, channels, planes, true);
}

void deinterleave_u16(const uint16_t* src, int64_t n, int channels, uint16_t* const* planes) {
  deinterleave_scalar(src, 0, n, channels, planes);  // 16-bit PNGs: rare, libpng dominates
}

void interleave_u8(const uint8_t* const* planes, int64_t n, int channels, uint8_t* dst) {
  int64_t i = 0;
#if defined(__SSSE3__)
  if (channels == 3) interleave3_sse(planes, n, dst, i);
#elif defined(__ARM_NEON)
  if (channels == 3) {
    for (; i + 16 <= n; i += 16) {
      uint8x16x3_t v;
      for (int c = 0; c < 3; ++c) v.val[c] = vld1q_u8(planes[c] + i);
      vst3q_u8(dst + 3 * i, v);
    }
  }
#endif
  for (; i < n; ++i)
    for (int c = 0; c < channels; ++c) dst[i * channels + c] = planes[c][i];
}

}  // namespace tvops::cpu::TVOPS_CPU_TIER
