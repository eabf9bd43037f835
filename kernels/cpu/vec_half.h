// Loading float16 / bfloat16 feature maps as float32 vectors (tier namespace). Both
// conversions are exact, so kernels on half inputs give the float32 kernels' results
// on the upcast input while reading half the bytes.
#pragma once

#include <xsimd/xsimd.hpp>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/tier.h"

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace tvops::cpu::TVOPS_CPU_TIER {
namespace {

inline float bf16_to_float(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float f16_to_float(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#elif defined(__aarch64__)
  __fp16 v;
  std::memcpy(&v, &h, 2);
  return static_cast<float>(v);
#else
#error "a tier without hardware half conversion"
#endif
}

template <bool BF16>
inline float half_to_float(uint16_t h) { return BF16 ? bf16_to_float(h) : f16_to_float(h); }

// xsimd::batch<float>::size values from p.
template <bool BF16>
inline xsimd::batch<float> load_half(const uint16_t* p) {
#if defined(__AVX512F__)
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if constexpr (BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
  else return _mm512_cvtph_ps(v);
#elif defined(__AVX2__)
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
  else return _mm256_cvtph_ps(v);
#elif defined(__aarch64__)
  const uint16x4_t v = vld1_u16(p);
  if constexpr (BF16) return vreinterpretq_f32_u32(vshll_n_u16(v, 16));
  else return vcvt_f32_f16(vreinterpret_f16_u16(v));
#else
#error "no half loader for this tier"
#endif
}

// Element access that upcasts: float/double pass through, halves convert.
template <typename Src, bool BF16 = false>
struct Source {
  using batch = xsimd::batch<Src>;
  static batch load(const Src* p) { return batch::load_unaligned(p); }
  static Src scalar(const Src* p) { return *p; }
};
template <bool BF16>
struct Source<uint16_t, BF16> {
  using batch = xsimd::batch<float>;
  static batch load(const uint16_t* p) { return load_half<BF16>(p); }
  static float scalar(const uint16_t* p) { return half_to_float<BF16>(*p); }
};

}  // namespace
}  // namespace tvops::cpu::TVOPS_CPU_TIER
