// roi_align forward and backward with torchvision's sampling arithmetic (OPS.md §5),
// vectorised over channels of a channels-last feature map.
#include "kernels/cpu/roi_align.h"

#include "kernels/cpu/roi_common.h"
#include "kernels/cpu/vec_half.h"

#include <xsimd/xsimd.hpp>

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
        for (int64_t u = 0; u < U; ++u) (v[u] / count).store_unaligned(dst + c + u * L);
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
        (v / count).store_unaligned(dst + c);
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

}  // namespace

template <typename T>
void roi_align_forward(const RoiArgs<T>& a, const T* input, int64_t roi_begin, int64_t roi_end, T* out) {
  forward_impl<T, T>(a, input, roi_begin, roi_end, out);
}

void roi_align_forward_half(const RoiArgs<float>& a, const uint16_t* input, bool bf16, int64_t roi_begin,
                            int64_t roi_end, float* out) {
  if (bf16)
    forward_impl<float, uint16_t, true>(a, input, roi_begin, roi_end, out);
  else
    forward_impl<float, uint16_t, false>(a, input, roi_begin, roi_end, out);
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
            (B::load_unaligned(dst + c) + (B::load_unaligned(&g_bin[c]) * B(w)) / B(count)).store_unaligned(dst + c);
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
