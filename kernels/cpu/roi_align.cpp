// roi_align forward and backward with torchvision's sampling arithmetic (OPS.md §5),
// vectorised over channels of a channels-last feature map.
#include "kernels/cpu/roi_align.h"

#include "kernels/cpu/roi_common.h"
#include "kernels/cpu/vec_half.h"

#include <xsimd/xsimd.hpp>

#include "kernels/cpu/vec_div.h"

#if defined(__AVX512VNNI__) || defined(__AVX512BF16__)
#include <immintrin.h>
#endif
#include <type_traits>

#if defined(__ARM_FEATURE_SVE)
#include <arm_sve.h>
#endif

#include "kernels/cpu/buffer.h"

#include <algorithm>
#include <cmath>

namespace tvops::cpu::TVOPS_CPU_TIER {

namespace {

// The RoI's geometry, computed in T exactly as torchvision's kernels do.
template <typename T>
struct RoiGeometry {
  int64_t batch;
  T start_h, start_w, bin_h, bin_w;
  int64_t grid_h, grid_w;
  T count;  // forward divisor: max(grid_h * grid_w, 1); backward uses grid_h * grid_w
  // Samples actually taken per bin. An inverted RoI with aligned=True has negative
  // grid sizes: torchvision's loops then take none (while grid_h * grid_w may be 1).
  int64_t samples_per_bin;

  RoiGeometry(const RoiArgs<T>& a, int64_t k) {
    const T* r = a.rois + 5 * k;
    batch = static_cast<int64_t>(r[0]);
    const T offset = a.aligned ? T(0.5) : T(0);
    start_w = r[1] * a.spatial_scale - offset;
    start_h = r[2] * a.spatial_scale - offset;
    const T end_w = r[3] * a.spatial_scale - offset;
    const T end_h = r[4] * a.spatial_scale - offset;
    T width = end_w - start_w, height = end_h - start_h;
    if (!a.aligned) {  // legacy: malformed RoIs forced to 1x1
      width = std::max(width, T(1));
      height = std::max(height, T(1));
    }
    bin_h = height / static_cast<T>(a.pooled_height);
    bin_w = width / static_cast<T>(a.pooled_width);
    grid_h = a.sampling_ratio > 0 ? a.sampling_ratio : adaptive_grid("roi_align", height / static_cast<T>(a.pooled_height), k);
    grid_w = a.sampling_ratio > 0 ? a.sampling_ratio : adaptive_grid("roi_align", width / static_cast<T>(a.pooled_width), k);
    count = static_cast<T>(std::max<int64_t>(grid_h * grid_w, 1));
    samples_per_bin = std::max<int64_t>(grid_h, 0) * std::max<int64_t>(grid_w, 0);
  }

  T y(int64_t ph, int64_t iy) const {
    return start_h + static_cast<T>(ph) * bin_h + static_cast<T>(iy + .5f) * bin_h / static_cast<T>(grid_h);
  }
  T x(int64_t pw, int64_t ix) const {
    return start_w + static_cast<T>(pw) * bin_w + static_cast<T>(ix + .5f) * bin_w / static_cast<T>(grid_w);
  }
};

// Samples of every bin of a RoI in (ph, pw, iy, ix) order.
template <typename T>
void precompute(const RoiArgs<T>& a, const RoiGeometry<T>& g, Buffer<Sample<T>>& samples) {
  samples.clear();
  for (int64_t ph = 0; ph < a.pooled_height; ++ph)
    for (int64_t pw = 0; pw < a.pooled_width; ++pw)
      for (int64_t iy = 0; iy < g.grid_h; ++iy) {
        const T y = g.y(ph, iy);
        for (int64_t ix = 0; ix < g.grid_w; ++ix) samples.push_back(bilinear_sample(a.height, a.width, y, g.x(pw, ix)));
      }
}

#if defined(__ARM_FEATURE_SVE)
// armv9: one predicated SVE loop covers every channel count at any vector length
// (whilelt masks the last vector), where the fixed-width path needs a scalar tail.
// Same operations in the same order as torchvision, no fused multiply-add.
void forward_bin_sve(const Sample<float>* s, int64_t per_bin, const float* plane, int64_t C, float count,
                     float* dst) {
  const svfloat32_t n = svdup_f32(count);
  for (int64_t c = 0; c < C; c += int64_t(svcntw())) {
    const svbool_t pg = svwhilelt_b32(c, C);
    svfloat32_t v = svdup_f32(0.f);
    for (int64_t i = 0; i < per_bin; ++i) {
      const Sample<float>& p = s[i];
      svfloat32_t t = svadd_f32_x(pg, svmul_n_f32_x(pg, svld1_f32(pg, plane + p.pos[0] * C + c), p.w[0]),
                                  svmul_n_f32_x(pg, svld1_f32(pg, plane + p.pos[1] * C + c), p.w[1]));
      t = svadd_f32_x(pg, t, svmul_n_f32_x(pg, svld1_f32(pg, plane + p.pos[2] * C + c), p.w[2]));
      t = svadd_f32_x(pg, t, svmul_n_f32_x(pg, svld1_f32(pg, plane + p.pos[3] * C + c), p.w[3]));
      v = svadd_f32_x(pg, v, t);
    }
    svst1_f32(pg, dst + c, svdiv_f32_x(pg, v, n));
  }
}
#endif

// The forward for a map of Src (T, or uint16_t halves read through Source<>), in T.
template <typename T, typename Src, bool BF16 = false>
void forward_impl(const RoiArgs<T>& a, const Src* input, int64_t roi_begin, int64_t roi_end, T* out) {
  using In = Source<Src, BF16>;
  using B = xsimd::batch<T>;
  constexpr int64_t L = B::size;
  const int64_t C = a.channels, bins = a.pooled_height * a.pooled_width;
  Buffer<Sample<T>> samples;
  Buffer<T> acc(static_cast<std::size_t>(bins * C));  // [bin][channel]
  for (int64_t r = roi_begin; r < roi_end; ++r) {
    const int64_t k = a.order[r];
    const RoiGeometry<T> g(a, k);
    precompute(a, g, samples);
    const Src* plane = input + g.batch * a.height * a.width * C;
    const int64_t per_bin = g.samples_per_bin;
    for (int64_t bin = 0; bin < bins; ++bin) {
      const Sample<T>* s = samples.data() + bin * per_bin;
      T* dst = acc.data() + bin * C;
#if defined(__ARM_FEATURE_SVE)
      if constexpr (std::is_same_v<T, float> && std::is_same_v<Src, float>) {
        forward_bin_sve(s, per_bin, plane, C, g.count, dst);
        continue;
      }
#endif
      // Groups of U vectors of channels stay in registers while the bin's samples
      // stream past; each channel still sums its samples in torchvision's order.
      constexpr int64_t U = 4;
      const B count(g.count);
      int64_t c = 0;
      for (; c + U * L <= C; c += U * L) {
        B v[U];
        for (int64_t u = 0; u < U; ++u) v[u] = B(T(0));
        for (int64_t i = 0; i < per_bin; ++i) {
          const Sample<T>& p = s[i];
          const B w0(p.w[0]), w1(p.w[1]), w2(p.w[2]), w3(p.w[3]);
          const Src *v0 = plane + p.pos[0] * C + c, *v1 = plane + p.pos[1] * C + c, *v2 = plane + p.pos[2] * C + c,
                    *v3 = plane + p.pos[3] * C + c;
          for (int64_t u = 0; u < U; ++u) {
            // torchvision: out += w1*v1 + w2*v2 + w3*v3 + w4*v4, left to right.
            B t = w0 * In::load(v0 + u * L) + w1 * In::load(v1 + u * L);
            t = t + w2 * In::load(v2 + u * L);
            t = t + w3 * In::load(v3 + u * L);
            v[u] = v[u] + t;
          }
        }
        for (int64_t u = 0; u < U; ++u) div_exact(v[u], count).store_unaligned(dst + c + u * L);
      }
      for (; c + L <= C; c += L) {
        B v(T(0));
        for (int64_t i = 0; i < per_bin; ++i) {
          const Sample<T>& p = s[i];
          B t = B(p.w[0]) * In::load(plane + p.pos[0] * C + c) +
                B(p.w[1]) * In::load(plane + p.pos[1] * C + c);
          t = t + B(p.w[2]) * In::load(plane + p.pos[2] * C + c);
          t = t + B(p.w[3]) * In::load(plane + p.pos[3] * C + c);
          v = v + t;
        }
        div_exact(v, count).store_unaligned(dst + c);
      }
      for (; c < C; ++c) {
        T v = 0;
        for (int64_t i = 0; i < per_bin; ++i) {
          const Sample<T>& p = s[i];
          v += p.w[0] * In::scalar(plane + p.pos[0] * C + c) + p.w[1] * In::scalar(plane + p.pos[1] * C + c) +
               p.w[2] * In::scalar(plane + p.pos[2] * C + c) + p.w[3] * In::scalar(plane + p.pos[3] * C + c);
        }
        dst[c] = v / g.count;
      }
    }
    store_transposed(acc.data(), bins, C, out + k * C * bins);
  }
}

#if defined(__AVX512BF16__)
// bfloat16 maps on avx512bf16: vdpbf16ps multiplies bf16 pairs exactly and adds them in
// float32. Taps 0,1 and taps 2,3 of each channel are interleaved into pairs; each
// float32 weight is split into two bf16 (w = hi + lo, 16 significant bits), so the
// result is within float32 rounding of the exact float path (not bit-identical: the
// instruction's adds run in its own order). 32 channels a step: lanes m of 128-bit
// lane L hold channel 8L + m (low interleave) and 8L + 4 + m (high). The instruction
// treats bf16 denormals (below 1e-38) as zero.
void forward_bf16_dot(const RoiArgs<float>& a, const uint16_t* input, int64_t roi_begin, int64_t roi_end,
                      float* out) {
  const int64_t C = a.channels, bins = a.pooled_height * a.pooled_width, blocked = C / 32 * 32;
  Buffer<Sample<float>> samples;
  Buffer<float> acc(static_cast<std::size_t>(bins * C));  // [bin][channel]
  struct Halves {  // not std::pair: no shared template instantiated with zmm types
    __m512i hi, lo;
  };
  auto bf16_pair = [](float x, float y) {  // two floats -> (bf16(x), bf16(y)) and their remainders
    const __m128 v = _mm_setr_ps(x, y, 0.f, 0.f);
    const __m128bh hi = _mm_cvtneps_pbh(v);
    const __m128 back = _mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(reinterpret_cast<__m128i>(hi)), 16));
    const __m128bh lo = _mm_cvtneps_pbh(_mm_sub_ps(v, back));
    return Halves{_mm512_set1_epi32(_mm_cvtsi128_si32(reinterpret_cast<__m128i>(hi))),
                  _mm512_set1_epi32(_mm_cvtsi128_si32(reinterpret_cast<__m128i>(lo)))};
  };
  const __m512i to_channels_0 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i to_channels_1 = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  for (int64_t r = roi_begin; r < roi_end; ++r) {
    const int64_t k = a.order[r];
    const RoiGeometry<float> g(a, k);
    precompute(a, g, samples);
    const uint16_t* plane = input + g.batch * a.height * a.width * C;
    const int64_t per_bin = g.samples_per_bin;
    const __m512 count = _mm512_set1_ps(g.count);
    for (int64_t bin = 0; bin < bins; ++bin) {
      const Sample<float>* s = samples.data() + bin * per_bin;
      float* dst = acc.data() + bin * C;
      for (int64_t c = 0; c < blocked; c += 32) {
        __m512 lo_acc = _mm512_setzero_ps(), hi_acc = _mm512_setzero_ps();
        for (int64_t i = 0; i < per_bin; ++i) {
          const Sample<float>& p = s[i];  // off-map samples: pixel 0 at weight 0, as the float path
          const auto [w01h, w01l] = bf16_pair(p.w[0], p.w[1]);
          const auto [w23h, w23l] = bf16_pair(p.w[2], p.w[3]);
          const __m512i t0 = _mm512_loadu_si512(plane + p.pos[0] * C + c), t1 = _mm512_loadu_si512(plane + p.pos[1] * C + c);
          const __m512i t2 = _mm512_loadu_si512(plane + p.pos[2] * C + c), t3 = _mm512_loadu_si512(plane + p.pos[3] * C + c);
          const __m512bh p01l = (__m512bh)_mm512_unpacklo_epi16(t0, t1), p01h = (__m512bh)_mm512_unpackhi_epi16(t0, t1);
          const __m512bh p23l = (__m512bh)_mm512_unpacklo_epi16(t2, t3), p23h = (__m512bh)_mm512_unpackhi_epi16(t2, t3);
          lo_acc = _mm512_dpbf16_ps(lo_acc, p01l, (__m512bh)w01h);
          hi_acc = _mm512_dpbf16_ps(hi_acc, p01h, (__m512bh)w01h);
          lo_acc = _mm512_dpbf16_ps(lo_acc, p01l, (__m512bh)w01l);
          hi_acc = _mm512_dpbf16_ps(hi_acc, p01h, (__m512bh)w01l);
          lo_acc = _mm512_dpbf16_ps(lo_acc, p23l, (__m512bh)w23h);
          hi_acc = _mm512_dpbf16_ps(hi_acc, p23h, (__m512bh)w23h);
          lo_acc = _mm512_dpbf16_ps(lo_acc, p23l, (__m512bh)w23l);
          hi_acc = _mm512_dpbf16_ps(hi_acc, p23h, (__m512bh)w23l);
        }
        _mm512_storeu_ps(dst + c, _mm512_div_ps(_mm512_permutex2var_ps(lo_acc, to_channels_0, hi_acc), count));
        _mm512_storeu_ps(dst + c + 16, _mm512_div_ps(_mm512_permutex2var_ps(lo_acc, to_channels_1, hi_acc), count));
      }
      for (int64_t c = blocked; c < C; ++c) {  // tail channels: the float path's arithmetic
        float v = 0;
        for (int64_t i = 0; i < per_bin; ++i) {
          const Sample<float>& p = s[i];
          v += p.w[0] * bf16_to_float(plane[p.pos[0] * C + c]) + p.w[1] * bf16_to_float(plane[p.pos[1] * C + c]) +
               p.w[2] * bf16_to_float(plane[p.pos[2] * C + c]) + p.w[3] * bf16_to_float(plane[p.pos[3] * C + c]);
        }
        dst[c] = v / g.count;
      }
    }
    store_transposed(acc.data(), bins, C, out + k * C * bins);
  }
}
#endif

}  // namespace

template <typename T>
void roi_align_forward(const RoiArgs<T>& a, const T* input, int64_t roi_begin, int64_t roi_end, T* out) {
  forward_impl<T, T>(a, input, roi_begin, roi_end, out);
}

void roi_align_forward_half(const RoiArgs<float>& a, const uint16_t* input, bool bf16, int64_t roi_begin,
                            int64_t roi_end, float* out) {
  if (bf16)
#if defined(__AVX512BF16__)
    forward_bf16_dot(a, input, roi_begin, roi_end, out);
#else
    forward_impl<float, uint16_t, true>(a, input, roi_begin, roi_end, out);
#endif
  else
    forward_impl<float, uint16_t, false>(a, input, roi_begin, roi_end, out);
}

namespace {

// Integer bilinear weights: 14 bits, summing to exactly kWeightOne for every valid
// sample, so (sum - zero_point * valid samples * kWeightOne) is the zero-point-free
// sum. 127 * 128: each weight splits into two s8 halves (w = hi * 128 + lo) for
// vpdpbusd, whose second operand is signed.
constexpr int32_t kWeightOne = 127 * 128;
// Flush the int32 sums to float this often: 256 samples of 255 * kWeightOne fit.
constexpr int64_t kFlushSamples = 256;

void integer_weights(const Sample<float>& p, int32_t w[4]) {
  int32_t sum = 0, largest = 0;
  for (int j = 0; j < 4; ++j) {
    w[j] = static_cast<int32_t>(std::nearbyint(p.w[j] * float(kWeightOne)));
    sum += w[j];
    if (w[j] > w[largest]) largest = j;
  }
  w[largest] += kWeightOne - sum;
}

// out = zero_point + round((sum / kWeightOne - zero_point * valid) / count): the
// average of the samples' zero-point-free values, rounded half to even like torch's
// quantizer. `sum` is the integer sum of taps x weights over the bin's samples.
inline uint8_t quantized_average(float sum, float offset, float count, int32_t zero_point) {
  const float q = std::nearbyint((sum / float(kWeightOne) - offset) / count) + float(zero_point);
  return static_cast<uint8_t>(std::min(255.f, std::max(0.f, q)));
}

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
constexpr int64_t kU8Block = 64;

// 64 channels of one bin straight to output bytes. Per sample, the four taps' bytes
// are interleaved so each 32-bit lane holds one channel's four taps, then one
// vpdpbusd per weight half (w = hi * 128 + lo; the weight operand is signed bytes).
// Quad k lane (L, m) is channel 16L + 4k + m; a 4x4 transpose of 128-bit lanes puts
// the sums back in channel order.
void u8_block(const uint8_t* plane, const int64_t (*off)[4], const int32_t (*w)[4], int64_t n, float offset,
              float count, int32_t zero_point, uint8_t* res) {
  __m512i hi[4], lo[4];
  for (int k = 0; k < 4; ++k) hi[k] = lo[k] = _mm512_setzero_si512();
  for (int64_t s = 0; s < n; ++s) {
    const __m512i t0 = _mm512_loadu_si512(plane + off[s][0]), t1 = _mm512_loadu_si512(plane + off[s][1]);
    const __m512i t2 = _mm512_loadu_si512(plane + off[s][2]), t3 = _mm512_loadu_si512(plane + off[s][3]);
    const __m512i p01l = _mm512_unpacklo_epi8(t0, t1), p01h = _mm512_unpackhi_epi8(t0, t1);
    const __m512i p23l = _mm512_unpacklo_epi8(t2, t3), p23h = _mm512_unpackhi_epi8(t2, t3);
    const __m512i q[4] = {_mm512_unpacklo_epi16(p01l, p23l), _mm512_unpackhi_epi16(p01l, p23l),
                          _mm512_unpacklo_epi16(p01h, p23h), _mm512_unpackhi_epi16(p01h, p23h)};
    const int32_t* ws = w[s];
    const __m512i whi = _mm512_set1_epi32(int32_t(uint32_t(ws[0] >> 7) | uint32_t(ws[1] >> 7) << 8 |
                                                  uint32_t(ws[2] >> 7) << 16 | uint32_t(ws[3] >> 7) << 24));
    const __m512i wlo = _mm512_set1_epi32(int32_t(uint32_t(ws[0] & 127) | uint32_t(ws[1] & 127) << 8 |
                                                  uint32_t(ws[2] & 127) << 16 | uint32_t(ws[3] & 127) << 24));
    for (int k = 0; k < 4; ++k) {
      hi[k] = _mm512_dpbusd_epi32(hi[k], q[k], whi);
      lo[k] = _mm512_dpbusd_epi32(lo[k], q[k], wlo);
    }
  }
  __m512i sum[4];
  for (int k = 0; k < 4; ++k) sum[k] = _mm512_add_epi32(_mm512_slli_epi32(hi[k], 7), lo[k]);
  const __m512i a0 = _mm512_shuffle_i32x4(sum[0], sum[1], 0x44), a1 = _mm512_shuffle_i32x4(sum[0], sum[1], 0xEE);
  const __m512i a2 = _mm512_shuffle_i32x4(sum[2], sum[3], 0x44), a3 = _mm512_shuffle_i32x4(sum[2], sum[3], 0xEE);
  const __m512i natural[4] = {_mm512_shuffle_i32x4(a0, a2, 0x88), _mm512_shuffle_i32x4(a0, a2, 0xDD),
                              _mm512_shuffle_i32x4(a1, a3, 0x88), _mm512_shuffle_i32x4(a1, a3, 0xDD)};
  const __m512 one(_mm512_set1_ps(float(kWeightOne))), off_v(_mm512_set1_ps(offset)), count_v(_mm512_set1_ps(count));
  const __m512 zp(_mm512_set1_ps(float(zero_point))), lo_clamp(_mm512_setzero_ps()), hi_clamp(_mm512_set1_ps(255.f));
  for (int j = 0; j < 4; ++j) {  // quantized_average, lane-wise
    const __m512 v = _mm512_div_ps(_mm512_sub_ps(_mm512_div_ps(_mm512_cvtepi32_ps(natural[j]), one), off_v), count_v);
    __m512 q = _mm512_add_ps(_mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zp);
    q = _mm512_min_ps(hi_clamp, _mm512_max_ps(lo_clamp, q));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(res + 16 * j), _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(q)));
  }
}
#else
constexpr int64_t kU8Block = 0;
#endif

}  // namespace

void roi_align_forward_u8(const RoiArgs<float>& a, const uint8_t* input, int32_t zero_point, int64_t roi_begin,
                          int64_t roi_end, uint8_t* out) {
  const int64_t C = a.channels, bins = a.pooled_height * a.pooled_width;
  Buffer<Sample<float>> samples;
  Buffer<int64_t> offsets;  // [valid sample][tap]: pixel offset * C
  Buffer<int32_t> weights;  // [valid sample][tap]
  Buffer<int32_t> acc(static_cast<std::size_t>(C));
  Buffer<float> total(static_cast<std::size_t>(C));
  Buffer<uint8_t> result(static_cast<std::size_t>(bins * C));  // [bin][channel]
  for (int64_t r = roi_begin; r < roi_end; ++r) {
    const int64_t k = a.order[r];
    const RoiGeometry<float> g(a, k);
    precompute(a, g, samples);
    const uint8_t* plane = input + g.batch * a.height * a.width * C;
    const int64_t per_bin = g.samples_per_bin;
    for (int64_t bin = 0; bin < bins; ++bin) {
      offsets.clear();
      weights.clear();
      for (int64_t i = 0; i < per_bin; ++i) {
        const Sample<float>& p = samples[bin * per_bin + i];
        if (!p.valid) continue;  // outside the map: adds 0
        int32_t w[4];
        integer_weights(p, w);
        for (int j = 0; j < 4; ++j) offsets.push_back(p.pos[j] * C), weights.push_back(w[j]);
      }
      const int64_t valid = static_cast<int64_t>(weights.size()) / 4;
      const float offset = float(zero_point) * float(valid);
      const auto* off = reinterpret_cast<const int64_t(*)[4]>(offsets.data());
      const auto* w = reinterpret_cast<const int32_t(*)[4]>(weights.data());
      uint8_t* res = result.data() + bin * C;
      int64_t c = 0;
      if (valid <= kFlushSamples) {  // one int32 sum per channel holds the bin
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
        for (; c + kU8Block <= C; c += kU8Block) u8_block(plane + c, off, w, valid, offset, g.count, zero_point, res + c);
#endif
        for (int64_t i = c; i < C; ++i) acc[i] = 0;
        for (int64_t s = 0; s < valid; ++s)
          for (int64_t i = c; i < C; ++i)
            acc[i] += int32_t(plane[off[s][0] + i]) * w[s][0] + int32_t(plane[off[s][1] + i]) * w[s][1] +
                      int32_t(plane[off[s][2] + i]) * w[s][2] + int32_t(plane[off[s][3] + i]) * w[s][3];
        for (; c < C; ++c) res[c] = quantized_average(float(acc[c]), offset, g.count, zero_point);
        continue;
      }
      // Huge adaptive grids: int32 partial sums every kFlushSamples, totals in float.
      for (int64_t i = 0; i < C; ++i) total[i] = 0.f;
      for (int64_t s0 = 0; s0 < valid; s0 += kFlushSamples) {
        for (int64_t i = 0; i < C; ++i) acc[i] = 0;
        for (int64_t s = s0; s < std::min(valid, s0 + kFlushSamples); ++s)
          for (int64_t i = 0; i < C; ++i)
            acc[i] += int32_t(plane[off[s][0] + i]) * w[s][0] + int32_t(plane[off[s][1] + i]) * w[s][1] +
                      int32_t(plane[off[s][2] + i]) * w[s][2] + int32_t(plane[off[s][3] + i]) * w[s][3];
        for (int64_t i = 0; i < C; ++i) total[i] += float(acc[i]);
      }
      for (int64_t i = 0; i < C; ++i) res[i] = quantized_average(total[i], offset, g.count, zero_point);
    }
    store_transposed(result.data(), bins, C, out + k * C * bins);
  }
}

template <typename T>
void roi_align_backward(const RoiArgs<T>& a, const T* grad, int64_t c_begin, int64_t c_end, T* grad_input) {
  using B = xsimd::batch<T>;
  constexpr int64_t L = B::size;
  const int64_t C = a.channels, bins = a.pooled_height * a.pooled_width, nc = c_end - c_begin;
  Buffer<Sample<T>> samples;
  Buffer<T> g_bin(static_cast<std::size_t>(nc));
  for (int64_t k = 0; k < a.num_rois; ++k) {
    const RoiGeometry<T> geo(a, k);
    precompute(a, geo, samples);
    T* plane = grad_input + geo.batch * a.height * a.width * C;
    const int64_t per_bin = geo.samples_per_bin;
    const T count = static_cast<T>(geo.grid_h * geo.grid_w);  // no max(.., 1) in torchvision's backward
    const T* gk = grad + k * C * bins;
    for (int64_t bin = 0; bin < bins; ++bin) {
      for (int64_t c = 0; c < nc; ++c) g_bin[c] = gk[(c_begin + c) * bins + bin];
      for (int64_t i = 0; i < per_bin; ++i) {
        const Sample<T>& p = samples[bin * per_bin + i];
        if (!p.valid) continue;  // outside the map
        for (int corner = 0; corner < 4; ++corner) {
          T* dst = plane + p.pos[corner] * C + c_begin;
          const T w = p.w[corner];
          int64_t c = 0;
          // torchvision: g = grad * w / count, added corner by corner.
          for (; c + L <= nc; c += L)
            (B::load_unaligned(dst + c) + div_exact(B::load_unaligned(&g_bin[c]) * B(w), B(count))).store_unaligned(dst + c);
          for (; c < nc; ++c) dst[c] += g_bin[c] * w / count;
        }
      }
    }
  }
}

template void roi_align_forward<float>(const RoiArgs<float>&, const float*, int64_t, int64_t, float*);
template void roi_align_forward<double>(const RoiArgs<double>&, const double*, int64_t, int64_t, double*);
template void roi_align_backward<float>(const RoiArgs<float>&, const float*, int64_t, int64_t, float*);
template void roi_align_backward<double>(const RoiArgs<double>&, const double*, int64_t, int64_t, double*);

}  // namespace tvops::cpu::TVOPS_CPU_TIER
