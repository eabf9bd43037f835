#include "kernels/cpu/ycc_rgb.h"

#include <algorithm>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace tvops::cpu::TVOPS_CPU_TIER {

namespace {

// libjpeg's constants: FIX(x) = round(x * 2^16).
constexpr int kCrR = 91881;    // FIX(1.40200)
constexpr int kCbB = 116130;   // FIX(1.77200)
constexpr int kCbG = -22554;   // -FIX(0.34414)
constexpr int kCrG = -46802;   // -FIX(0.71414)
// The SIMD form (libjpeg-turbo's): 1.402 = 1 + 0.402, 1.772 = 2 - 0.228,
// -0.71414 = 0.28586 - 1, so every multiplier fits 16 bits.
constexpr int kCr0402 = 26345;   // FIX(0.40200)
constexpr int kCbM0228 = -14942; // -FIX(0.22800)
constexpr int kCr0285 = 18734;   // FIX(0.28586)

inline uint8_t clamp_u8(int v) { return static_cast<uint8_t>(std::clamp(v, 0, 255)); }

void ycc_to_rgb_scalar(const uint8_t* y, const uint8_t* cb, const uint8_t* cr, int64_t begin, int64_t n,
                       uint8_t* const* planes) {
  for (int64_t i = begin; i < n; ++i) {
    const int yy = y[i], xb = cb[i] - 128, xr = cr[i] - 128;
    planes[0][i] = clamp_u8(yy + ((kCrR * xr + 32768) >> 16));
    planes[1][i] = clamp_u8(yy + ((kCbG * xb + kCrG * xr + 32768) >> 16));
    planes[2][i] = clamp_u8(yy + ((kCbB * xb + 32768) >> 16));
  }
}

// cs[j + 1] = column sum of chroma column j, cs[0] and cs[w + 1] replicate the edges.
void column_sums_scalar(const uint8_t* near, const uint8_t* far, int64_t begin, int64_t w, bool v2, uint16_t* cs) {
  for (int64_t j = begin; j < w; ++j) cs[j + 1] = static_cast<uint16_t>(v2 ? 3 * near[j] + far[j] : near[j]);
}

// Chroma columns [begin, end) widened to pixels out[0, 2 (end - begin)):
// out[2j] = (3 cs[j] + cs[j - 1] + b0) >> s, out[2j + 1] = (3 cs[j] + cs[j + 1] + b1) >> s
// (cs indexed from 1 as above): libjpeg's h2v2 (8, 7, 4) and h2v1 (1, 2, 2).
void widen_scalar(const uint16_t* cs, int64_t begin, int64_t end, int b0, int b1, int s, uint8_t* out) {
  for (int64_t j = begin; j < end; ++j, out += 2) {
    const int c = 3 * cs[j + 1];
    out[0] = static_cast<uint8_t>((c + cs[j] + b0) >> s);
    out[1] = static_cast<uint8_t>((c + cs[j + 2] + b1) >> s);
  }
}

struct Bias {
  int b0, b1, shift;
};
inline Bias bias_of(bool v2) { return v2 ? Bias{8, 7, 4} : Bias{1, 2, 2}; }

#if defined(__AVX2__)
// The vector steps, written once over a register type: 256-bit (AVX2) or 512-bit
// (AVX-512BW) registers of 16-bit lanes. Each 128-bit lane works on its own, as the
// unpack / pack instructions do, so both widths give the same results.
struct V256 {
  using R = __m256i;
  static constexpr int kBytes = 32;
  static R load(const void* p) { return _mm256_loadu_si256(static_cast<const R*>(p)); }
  static R widen(const uint8_t* p) {  // kBytes / 2 bytes -> 16-bit lanes
    return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static void store(void* p, R v) { _mm256_storeu_si256(static_cast<R*>(p), v); }
  static void stream(void* p, R v) { _mm256_stream_si256(static_cast<R*>(p), v); }
  static R set16(int v) { return _mm256_set1_epi16(static_cast<short>(v)); }
  static R set32(int v) { return _mm256_set1_epi32(v); }
  static R pair16(int lo, int hi) { return _mm256_set1_epi32((hi << 16) | (lo & 0xffff)); }
  static R add16(R a, R b) { return _mm256_add_epi16(a, b); }
  static R sub16(R a, R b) { return _mm256_sub_epi16(a, b); }
  static R add32(R a, R b) { return _mm256_add_epi32(a, b); }
  static R and_(R a, R b) { return _mm256_and_si256(a, b); }
  static R or_(R a, R b) { return _mm256_or_si256(a, b); }
  static R srli16(R a, int n) { return _mm256_srli_epi16(a, n); }
  static R slli16(R a, int n) { return _mm256_slli_epi16(a, n); }
  static R srai16(R a, int n) { return _mm256_srai_epi16(a, n); }
  static R srai32(R a, int n) { return _mm256_srai_epi32(a, n); }
  static R mulhi16(R a, R b) { return _mm256_mulhi_epi16(a, b); }
  static R madd16(R a, R b) { return _mm256_madd_epi16(a, b); }
  static R unpacklo16(R a, R b) { return _mm256_unpacklo_epi16(a, b); }
  static R unpackhi16(R a, R b) { return _mm256_unpackhi_epi16(a, b); }
  static R packs32(R a, R b) { return _mm256_packs_epi32(a, b); }
  static R packus16(R a, R b) { return _mm256_packus_epi16(a, b); }
  static R shuffle8(R a, R idx) { return _mm256_shuffle_epi8(a, idx); }
  static R lane_pattern(__m128i p) { return _mm256_broadcastsi128_si256(p); }
};

#if defined(__AVX512BW__)
struct V512 {
  using R = __m512i;
  static constexpr int kBytes = 64;
  static R load(const void* p) { return _mm512_loadu_si512(p); }
  static R widen(const uint8_t* p) {
    return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void store(void* p, R v) { _mm512_storeu_si512(p, v); }
  static void stream(void* p, R v) { _mm512_stream_si512(static_cast<R*>(p), v); }
  static R set16(int v) { return _mm512_set1_epi16(static_cast<short>(v)); }
  static R set32(int v) { return _mm512_set1_epi32(v); }
  static R pair16(int lo, int hi) { return _mm512_set1_epi32((hi << 16) | (lo & 0xffff)); }
  static R add16(R a, R b) { return _mm512_add_epi16(a, b); }
  static R sub16(R a, R b) { return _mm512_sub_epi16(a, b); }
  static R add32(R a, R b) { return _mm512_add_epi32(a, b); }
  static R and_(R a, R b) { return _mm512_and_si512(a, b); }
  static R or_(R a, R b) { return _mm512_or_si512(a, b); }
  static R srli16(R a, int n) { return _mm512_srli_epi16(a, static_cast<unsigned>(n)); }
  static R slli16(R a, int n) { return _mm512_slli_epi16(a, static_cast<unsigned>(n)); }
  static R srai16(R a, int n) { return _mm512_srai_epi16(a, static_cast<unsigned>(n)); }
  static R srai32(R a, int n) { return _mm512_srai_epi32(a, static_cast<unsigned>(n)); }
  static R mulhi16(R a, R b) { return _mm512_mulhi_epi16(a, b); }
  static R madd16(R a, R b) { return _mm512_madd_epi16(a, b); }
  static R unpacklo16(R a, R b) { return _mm512_unpacklo_epi16(a, b); }
  static R unpackhi16(R a, R b) { return _mm512_unpackhi_epi16(a, b); }
  static R packs32(R a, R b) { return _mm512_packs_epi32(a, b); }
  static R packus16(R a, R b) { return _mm512_packus_epi16(a, b); }
  static R shuffle8(R a, R idx) { return _mm512_shuffle_epi8(a, idx); }
  static R lane_pattern(__m128i p) { return _mm512_broadcast_i32x4(p); }
};
using Vec = V512;
#else
using Vec = V256;
#endif

template <typename V>
int64_t column_sums_vec(const uint8_t* near, const uint8_t* far, int64_t w, bool v2, uint16_t* cs) {
  constexpr int L = V::kBytes / 2;
  int64_t j = 0;
  for (; j + L <= w; j += L) {
    typename V::R c = V::widen(near + j);
    if (v2) c = V::add16(V::add16(c, V::add16(c, c)), V::widen(far + j));
    V::store(cs + j + 1, c);
  }
  return j;
}

// libjpeg-turbo's vector arithmetic on the even and odd pixels of a register (x: the
// chroma less 128, 16-bit lanes): returns R - Y, G - Y, B - Y.
template <typename V>
inline void chroma_terms(typename V::R xb, typename V::R xr, typename V::R& r, typename V::R& g,
                         typename V::R& b) {
  using R = typename V::R;
  const R one = V::set16(1);
  r = V::mulhi16(V::add16(xr, xr), V::set16(kCr0402));  // floor(2 xr * 0.402 * 2^16 / 2^16)
  r = V::add16(V::srai16(V::add16(r, one), 1), xr);
  b = V::mulhi16(V::add16(xb, xb), V::set16(kCbM0228));
  b = V::add16(V::add16(V::srai16(V::add16(b, one), 1), xb), xb);
  const R k = V::pair16(kCbG, kCr0285), half = V::set32(32768);
  const R lo = V::srai32(V::add32(V::madd16(V::unpacklo16(xb, xr), k), half), 16);
  const R hi = V::srai32(V::add32(V::madd16(V::unpackhi16(xb, xr), k), half), 16);
  g = V::sub16(V::packs32(lo, hi), xr);
}

// R, G, B of 2 * kBytes pixels from their even and odd Y and chroma - 128 (16-bit
// lanes), stored at out[c] + 0.
template <typename V, bool Stream>
inline void store_rgb(typename V::R ye, typename V::R yo, typename V::R xbe, typename V::R xre, typename V::R xbo,
                      typename V::R xro, uint8_t* const* out) {
  using R = typename V::R;
  // packus(E, O) leaves 8 even then 8 odd pixels in each 128-bit lane; this restores
  // their order.
  const R order = V::lane_pattern(_mm_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15));
  R re, ge, be, ro, go, bo;
  chroma_terms<V>(xbe, xre, re, ge, be);
  chroma_terms<V>(xbo, xro, ro, go, bo);
  const R rgb[3] = {V::shuffle8(V::packus16(V::add16(ye, re), V::add16(yo, ro)), order),
                    V::shuffle8(V::packus16(V::add16(ye, ge), V::add16(yo, go)), order),
                    V::shuffle8(V::packus16(V::add16(ye, be), V::add16(yo, bo)), order)};
  for (int c = 0; c < 3; ++c) {
    if (Stream)
      V::stream(out[c], rgb[c]);
    else
      V::store(out[c], rgb[c]);
  }
}

// 4:4:4: every pixel has its own chroma.
template <typename V, bool Stream>
int64_t full_rgb_vec(const YccRow& row, uint8_t* const* planes) {
  using R = typename V::R;
  const R low = V::set16(0x00ff), minus128 = V::set16(-128);
  int64_t i = 0;
  for (; i + V::kBytes <= row.width; i += V::kBytes) {
    const R yv = V::load(row.y + i), bv = V::load(row.cb + i), rv = V::load(row.cr + i);
    uint8_t* out[3] = {planes[0] + i, planes[1] + i, planes[2] + i};
    store_rgb<V, Stream>(V::and_(yv, low), V::srli16(yv, 8), V::add16(V::and_(bv, low), minus128),
                         V::add16(V::and_(rv, low), minus128), V::add16(V::srli16(bv, 8), minus128),
                         V::add16(V::srli16(rv, 8), minus128), out);
  }
  return i;
}

// 4:2:2 and 4:2:0: the upsampler's even and odd outputs of kBytes / 2 chroma columns are
// the even and odd pixels the colour step works on, so they never leave registers.
// cs: the two components' column sums (column_sums layout, cb then cr).
template <typename V, bool Stream>
int64_t half_rgb_vec(const YccRow& row, const uint16_t* cs_b, const uint16_t* cs_r, Bias bias,
                     uint8_t* const* planes) {
  using R = typename V::R;
  constexpr int L = V::kBytes / 2;
  const R low = V::set16(0x00ff), b0 = V::set16(bias.b0 - 128 * (1 << bias.shift)),
          b1 = V::set16(bias.b1 - 128 * (1 << bias.shift));
  // (3 c + left + b0) >> s - 128 == (3 c + left + b0 - 128 << s) >> s (arithmetic)
  auto widen = [&](const uint16_t* cs, int64_t j, R& even, R& odd) {
    const R c = V::load(cs + j + 1), c3 = V::add16(c, V::add16(c, c));
    even = V::srai16(V::add16(V::add16(c3, V::load(cs + j)), b0), bias.shift);
    odd = V::srai16(V::add16(V::add16(c3, V::load(cs + j + 2)), b1), bias.shift);
  };
  int64_t j = 0;
  for (; j + L <= row.chroma_width && 2 * (j + L) <= row.width; j += L) {
    R xbe, xbo, xre, xro;
    widen(cs_b, j, xbe, xbo);
    widen(cs_r, j, xre, xro);
    const R yv = V::load(row.y + 2 * j);
    uint8_t* out[3] = {planes[0] + 2 * j, planes[1] + 2 * j, planes[2] + 2 * j};
    store_rgb<V, Stream>(V::and_(yv, low), V::srli16(yv, 8), xbe, xre, xbo, xro, out);
  }
  return j;
}
#endif

// cs[j + 1] for every chroma column, and the replicated edges.
void column_sums(const uint8_t* near, const uint8_t* far, int64_t w, bool v2, uint16_t* cs) {
  int64_t j = 0;
#if defined(__AVX2__)
  j = column_sums_vec<Vec>(near, far, w, v2, cs);
#endif
  column_sums_scalar(near, far, j, w, v2, cs);
  cs[0] = cs[1];
  cs[w + 1] = cs[w];
}

}  // namespace

void ycc_to_rgb_row(const YccRow& row, uint8_t* const* planes, bool stream, uint16_t* scratch) {
#if defined(__AVX2__)
  uintptr_t bits = 0;
  for (int c = 0; c < 3; ++c) bits |= reinterpret_cast<uintptr_t>(planes[c]);
  stream = stream && (bits & (Vec::kBytes - 1)) == 0;
#else
  (void)stream;
#endif
  if (row.sampling == ChromaSampling::Full) {
    int64_t i = 0;
#if defined(__AVX2__)
    i = stream ? full_rgb_vec<Vec, true>(row, planes) : full_rgb_vec<Vec, false>(row, planes);
#endif
    ycc_to_rgb_scalar(row.y, row.cb, row.cr, i, row.width, planes);
    return;
  }
  const bool v2 = row.sampling == ChromaSampling::H2V2;
  const int64_t cw = row.chroma_width;
  uint16_t* cs_b = scratch;
  uint16_t* cs_r = scratch + cw + 2;
  column_sums(row.cb, row.cb_far, cw, v2, cs_b);
  column_sums(row.cr, row.cr_far, cw, v2, cs_r);
  const Bias bias = bias_of(v2);
  int64_t j = 0;
#if defined(__AVX2__)
  j = stream ? half_rgb_vec<Vec, true>(row, cs_b, cs_r, bias, planes)
             : half_rgb_vec<Vec, false>(row, cs_b, cs_r, bias, planes);
#endif
  // The rest (under one vector): widen in pieces, then the scalar conversion.
  uint8_t cb[64], cr[64];
  for (; j < cw; j += 32) {
    const int64_t end = std::min(cw, j + 32);
    widen_scalar(cs_b, j, end, bias.b0, bias.b1, bias.shift, cb);
    widen_scalar(cs_r, j, end, bias.b0, bias.b1, bias.shift, cr);
    const int64_t n = std::min(row.width, 2 * end) - 2 * j;
    uint8_t* out[3] = {planes[0] + 2 * j, planes[1] + 2 * j, planes[2] + 2 * j};
    ycc_to_rgb_scalar(row.y + 2 * j, cb, cr, 0, n, out);
  }
}

}  // namespace tvops::cpu::TVOPS_CPU_TIER
