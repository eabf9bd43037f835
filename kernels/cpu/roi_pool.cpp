// roi_pool, ps_roi_align and ps_roi_pool with torchvision's CPU arithmetic (OPS.md
// §6-8): same rounding, bin bounds, clipping quirks and summation order, so results
// and gradients are identical to torchvision's.
#include "kernels/cpu/roi_pool.h"

#include <xsimd/xsimd.hpp>

#include "kernels/cpu/vec_div.h"

#include "kernels/cpu/buffer.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <type_traits>

#include "kernels/cpu/roi_common.h"

namespace tvops::cpu::TVOPS_CPU_TIER {

namespace {

// Integer bin bounds of a pooling op, clipped to [0, limit].
struct BinBounds {
  int64_t hstart, hend, wstart, wend;
  bool empty() const { return hend <= hstart || wend <= wstart; }
};

// Rounded integer RoI corners: roi_pool and ps_roi_pool's forward use round() in T,
// ps_roi_pool's backward roundf() (so float precision even for double).
template <typename T>
struct PoolRoi {
  int64_t batch, start_w, start_h;
  T bin_h, bin_w;
  PoolRoi(const RoiArgs<T>& a, int64_t k, bool plus_one, bool float_round) {
    const T* r = a.rois + 5 * k;
    batch = static_cast<int64_t>(r[0]);
    auto rnd = [&](T v) -> int64_t {
      return float_round ? static_cast<int64_t>(std::round(static_cast<float>(v)))
                         : static_cast<int64_t>(std::round(v));
    };
    start_w = rnd(r[1] * a.spatial_scale);
    start_h = rnd(r[2] * a.spatial_scale);
    const int64_t end_w = rnd(r[3] * a.spatial_scale), end_h = rnd(r[4] * a.spatial_scale);
    const int64_t extra = plus_one ? 1 : 0;  // roi_pool counts inclusive pixels, ps_roi_pool doesn't
    const int64_t w = std::max<int64_t>(end_w - start_w + extra, 1), h = std::max<int64_t>(end_h - start_h + extra, 1);
    bin_h = static_cast<T>(h) / static_cast<T>(a.pooled_height);
    bin_w = static_cast<T>(w) / static_cast<T>(a.pooled_width);
  }
  BinBounds bin(int64_t ph, int64_t pw, int64_t h_limit, int64_t w_limit) const {
    auto clip = [](int64_t v, int64_t hi) { return std::min(std::max<int64_t>(v, 0), hi); };
    BinBounds b;
    b.hstart = clip(static_cast<int64_t>(std::floor(static_cast<T>(ph) * bin_h)) + start_h, h_limit);
    b.hend = clip(static_cast<int64_t>(std::ceil(static_cast<T>(ph + 1) * bin_h)) + start_h, h_limit);
    b.wstart = clip(static_cast<int64_t>(std::floor(static_cast<T>(pw) * bin_w)) + start_w, w_limit);
    b.wend = clip(static_cast<int64_t>(std::ceil(static_cast<T>(pw + 1) * bin_w)) + start_w, w_limit);
    return b;
  }
};

// The valid (on-map) samples of each bin along one axis, bin after bin: bin p's are
// s[first[p] .. first[p + 1]) (several RoIs append one after another). A bin's sample
// positions move monotonically with the sample index, the direction of `bin`, so the
// first one past the far edge of the map ends the walk: for RoIs reaching far off a
// small map (adaptive grids of a hundred samples), most samples are never computed.
template <typename T>
struct ValidAxis {
  Buffer<AxisSample<T>> s;
  Buffer<int64_t> first;
  void clear() {
    s.clear();
    first.clear();
  }
  void append(int64_t size, T start, T bin, int64_t grid, int64_t bins) {
    for (int64_t p = 0; p < bins; ++p) {
      first.push_back(static_cast<int64_t>(s.size()));
      const T bin_start = static_cast<T>(p) * bin + start;
      for (int64_t i = 0; i < grid; ++i) {
        const T v = bin_start + static_cast<T>(i + .5f) * bin / static_cast<T>(grid);
        const AxisSample<T> a = axis_sample(size, v);
        if (a.valid)
          s.push_back(a);
        else if (bin >= T(0) ? v > T(size) : v < T(-1))
          break;
      }
    }
  }
  void close() { first.push_back(static_cast<int64_t>(s.size())); }
  // The valid samples of bin p of the RoI whose bins start at index at.
  const AxisSample<T>* begin(int64_t at, int64_t p) const { return s.data() + first[at + p]; }
  const AxisSample<T>* end(int64_t at, int64_t p) const { return s.data() + first[at + p + 1]; }
};

// ps_roi_align's geometry: always the half-pixel offset, no minimum size, and no
// guard on the divisor (an empty grid gives 0/0 = NaN, as in torchvision).
template <typename T>
struct PsAlignRoi {
  int64_t batch, grid_h, grid_w;
  T start_h, start_w, bin_h, bin_w, count;
  PsAlignRoi(const RoiArgs<T>& a, int64_t k) {
    const T* r = a.rois + 5 * k;
    batch = static_cast<int64_t>(r[0]);
    start_w = r[1] * a.spatial_scale - static_cast<T>(0.5);
    start_h = r[2] * a.spatial_scale - static_cast<T>(0.5);
    const T width = (r[3] * a.spatial_scale - static_cast<T>(0.5)) - start_w;
    const T height = (r[4] * a.spatial_scale - static_cast<T>(0.5)) - start_h;
    bin_h = height / static_cast<T>(a.pooled_height);
    bin_w = width / static_cast<T>(a.pooled_width);
    grid_h = a.sampling_ratio > 0 ? a.sampling_ratio
                                  : adaptive_grid("ps_roi_align", height / static_cast<T>(a.pooled_height), k);
    grid_w = a.sampling_ratio > 0 ? a.sampling_ratio
                                  : adaptive_grid("ps_roi_align", width / static_cast<T>(a.pooled_width), k);
    count = static_cast<T>(grid_h * grid_w);
  }
  // The valid samples of every bin, bin by bin in (iy, ix) order: bin b's are
  // out[first[b] .. first[b + 1]). Samples outside the map add exactly 0 to
  // torchvision's sums, so leaving them out changes no result; most RoIs of a
  // position-sensitive head lie partly off its small map.
  void valid_samples(const RoiArgs<T>& a, ValidAxis<T>& ys, ValidAxis<T>& xs, Buffer<Sample<T>>& out,
                     Buffer<int64_t>& first) const {
    ys.clear();
    ys.append(a.height, start_h, bin_h, grid_h, a.pooled_height);
    ys.close();
    xs.clear();
    xs.append(a.width, start_w, bin_w, grid_w, a.pooled_width);
    xs.close();
    out.clear();
    first.clear();
    for (int64_t ph = 0; ph < a.pooled_height; ++ph)
      for (int64_t pw = 0; pw < a.pooled_width; ++pw) {
        first.push_back(static_cast<int64_t>(out.size()));
        for (const AxisSample<T>* y = ys.begin(0, ph); y != ys.end(0, ph); ++y)
          for (const AxisSample<T>* x = xs.begin(0, pw); x != xs.end(0, pw); ++x)
            out.push_back(combine(*y, *x, a.width));
      }
    first.push_back(static_cast<int64_t>(out.size()));
  }
};

}  // namespace

template <typename T>
void roi_pool_forward(const RoiArgs<T>& a, const T* input, int64_t roi_begin, int64_t roi_end, T* out,
                      int32_t* argmax) {
  using B = xsimd::batch<T>;
  constexpr int64_t L = B::size;
  const int64_t C = a.channels, W = a.width, bins = a.pooled_height * a.pooled_width;
  Buffer<T> best(static_cast<std::size_t>(bins * C)), where(static_cast<std::size_t>(bins * C));
  Buffer<int32_t> where_index(static_cast<std::size_t>(bins * C));
  for (int64_t r = roi_begin; r < roi_end; ++r) {
    const int64_t k = a.order[r];
    const PoolRoi<T> roi(a, k, /*plus_one=*/true, /*float_round=*/false);
    const T* plane = input + roi.batch * a.height * W * C;
    for (int64_t ph = 0; ph < a.pooled_height; ++ph)
      for (int64_t pw = 0; pw < a.pooled_width; ++pw) {
        const BinBounds bb = roi.bin(ph, pw, a.height, W);
        T* m = best.data() + (ph * a.pooled_width + pw) * C;
        T* at = where.data() + (ph * a.pooled_width + pw) * C;
        // Empty bins give 0; otherwise the first strict maximum in row-major order
        // (NaN is never taken), starting from -FLT_MAX even for double.
        const T init = bb.empty() ? T(0) : T(-FLT_MAX);
        int64_t c = 0;
        // U vectors of channels at once: each compare-select chain waits on the one
        // before, so independent chains keep the core busy.
        constexpr int64_t U = 4;
        for (; c + U * L <= C; c += U * L) {
          B mv[U], av[U];  // fully unrolled below, so they stay in registers
#pragma GCC unroll 4
          for (int64_t u = 0; u < U; ++u) mv[u] = B(init), av[u] = B(T(-1));
          for (int64_t h = bb.hstart; h < bb.hend; ++h)
            for (int64_t w = bb.wstart; w < bb.wend; ++w) {
              const T* px = plane + (h * W + w) * C + c;
              const B pos(static_cast<T>(h * W + w));
#pragma GCC unroll 4
              for (int64_t u = 0; u < U; ++u) {
                const B v = B::load_unaligned(px + u * L);
                const auto gt = v > mv[u];
                mv[u] = xsimd::select(gt, v, mv[u]);
                av[u] = xsimd::select(gt, pos, av[u]);
              }
            }
#pragma GCC unroll 4
          for (int64_t u = 0; u < U; ++u) {
            mv[u].store_unaligned(m + c + u * L);
            av[u].store_unaligned(at + c + u * L);
          }
        }
        for (; c + L <= C; c += L) {
          B mv(init), av(T(-1));
          for (int64_t h = bb.hstart; h < bb.hend; ++h)
            for (int64_t w = bb.wstart; w < bb.wend; ++w) {
              const B v = B::load_unaligned(plane + (h * W + w) * C + c);
              const auto gt = v > mv;
              mv = xsimd::select(gt, v, mv);
              av = xsimd::select(gt, B(static_cast<T>(h * W + w)), av);
            }
          mv.store_unaligned(m + c);
          av.store_unaligned(at + c);
        }
        for (; c < C; ++c) {
          T mv = init, av = T(-1);
          for (int64_t h = bb.hstart; h < bb.hend; ++h)
            for (int64_t w = bb.wstart; w < bb.wend; ++w)
              if (plane[(h * W + w) * C + c] > mv) {
                mv = plane[(h * W + w) * C + c];
                av = static_cast<T>(h * W + w);
              }
          m[c] = mv;
          at[c] = av;
        }
      }
    store_transposed(best.data(), bins, C, out + k * C * bins);
    int64_t i = 0;
    if constexpr (std::is_same_v<T, float>)  // -O2 leaves this loop scalar
      for (; i + L <= bins * C; i += L) xsimd::to_int(B::load_unaligned(&where[i])).store_unaligned(&where_index[i]);
    for (; i < bins * C; ++i) where_index[i] = static_cast<int32_t>(where[i]);
    store_transposed(where_index.data(), bins, C, argmax + k * C * bins);
  }
}

template <typename T>
bool roi_pool_backward(const RoiArgs<T>& a, const T* grad, const int32_t* argmax, int64_t c_begin, int64_t c_end,
                       T* grad_input) {
  const int64_t C = a.channels, HW = a.height * a.width, bins = a.pooled_height * a.pooled_width;
  // Channel outer, RoIs inner: one input-gradient plane takes every RoI's scatter while
  // it is in cache (RoIs outer touched all C planes per RoI). Each element still sums
  // in RoI order, as torchvision's loop does. A RoI's bins of one channel lie a
  // C * bins stride from the next RoI's, beyond the hardware prefetchers' reach:
  // fetch them a few RoIs ahead. Indices come from the caller: out-of-range ones are
  // skipped and reported (the front-end raises), so a bad argmax never writes outside.
  constexpr int64_t kAhead = 6, kLine = 64 / sizeof(int32_t);
  bool in_range = true;
  for (int64_t c = c_begin; c < c_end; ++c)
    for (int64_t k = 0; k < a.num_rois; ++k) {
      if (k + kAhead < a.num_rois) {
        const int64_t next = ((k + kAhead) * C + c) * bins;
        for (int64_t o = 0; o < bins + kLine; o += kLine) {
          const int64_t e = std::min(o, bins - 1);
          __builtin_prefetch(&argmax[next + e]);
          __builtin_prefetch(&grad[next + e]);
        }
      }
      T* gi = grad_input + (static_cast<int64_t>(a.rois[5 * k]) * C + c) * HW;
      const int32_t* where = argmax + (k * C + c) * bins;
      const T* g = grad + (k * C + c) * bins;
      for (int64_t bin = 0; bin < bins; ++bin) {
        const int32_t w = where[bin];
        if (static_cast<uint64_t>(static_cast<int64_t>(w) + 1) - 1 < static_cast<uint64_t>(HW))
          gi[w] += g[bin];
        else
          in_range &= w == -1;
      }
    }
  return in_range;
}

// Per RoI and output channel, the bins' outputs are contiguous: walk channels outer.
template <typename T>
void ps_roi_align_forward_per_roi(const RoiArgs<T>& a, const T* input, int64_t roi_begin, int64_t roi_end, T* out) {
  const int64_t HW = a.height * a.width, bins = a.pooled_height * a.pooled_width, c_out = a.channels / bins;
  ValidAxis<T> ys, xs;
  Buffer<Sample<T>> s;
  Buffer<int64_t> first;
  for (int64_t k = roi_begin; k < roi_end; ++k) {
    const PsAlignRoi<T> roi(a, k);
    roi.valid_samples(a, ys, xs, s, first);
    T* o = out + k * c_out * bins;
    if (s.size() == 0) {  // wholly off the map: every sum is 0 (0/0 = NaN for an empty grid)
      for (int64_t i = 0; i < c_out * bins; ++i) o[i] = T(0) / roi.count;
      continue;
    }
    for (int64_t co = 0; co < c_out; ++co)
      for (int64_t bin = 0; bin < bins; ++bin) {
        const T* plane = input + (roi.batch * a.channels + co * bins + bin) * HW;
        T sum = 0;
        for (int64_t i = first[bin]; i < first[bin + 1]; ++i) {
          const Sample<T>& p = s[i];
          sum += p.w[0] * plane[p.pos[0]] + p.w[1] * plane[p.pos[1]] + p.w[2] * plane[p.pos[2]] +
                 p.w[3] * plane[p.pos[3]];
        }
        o[co * bins + bin] = sum / roi.count;
      }
  }
}

// The samples of a range of RoIs laid out bin by bin (ps_roi_align visits one bin of
// every RoI at a time, see below): geometry and separable axis samples per RoI once,
// then for each bin the valid samples of all RoIs, compact (32-bit offsets). RoIs are
// grouped by image. Off-map samples add an exact 0 to torchvision's sums, so they are
// left out, and every output starts as 0/count for the bins left without samples.
template <typename T>
struct PlaneSample {
  int32_t pos[4];
  T w[4];
};

template <typename T>
class PsBinSamples {
 public:
  struct Entry {
    int64_t roi, begin, end;  // roi: index into the range; samples [begin, end)
  };

  // False when the layout doesn't apply (offsets past 32 bits, huge adaptive grids).
  bool build(const RoiArgs<T>& a, int64_t roi_begin, int64_t roi_end, T* out) {
    const int64_t H = a.height, W = a.width, PH = a.pooled_height, PW = a.pooled_width;
    const int64_t bins = PH * PW, c_out = a.channels / bins;
    a_ = &a;
    begin_ = roi_begin;
    n_ = roi_end - roi_begin;
    if (H * W >= (int64_t(1) << 31) || n_ <= 0) return false;
    geo_.clear();
    int64_t max_batch = 0, grid_samples = 0;
    for (int64_t r = 0; r < n_; ++r) {
      geo_.push_back(PsAlignRoi<T>(a, roi_begin + r));
      const PsAlignRoi<T>& g = geo_[r];
      max_batch = std::max(max_batch, g.batch);
      grid_samples += PH * std::max<int64_t>(g.grid_h, 0) + PW * std::max<int64_t>(g.grid_w, 0);
    }
    if (grid_samples > (int64_t(1) << 24)) return false;
    ys_.clear();
    xs_.clear();
    for (int64_t r = 0; r < n_; ++r) {
      const PsAlignRoi<T>& g = geo_[r];
      ys_.append(H, g.start_h, g.bin_h, g.grid_h, PH);
      xs_.append(W, g.start_w, g.bin_w, g.grid_w, PW);
      T* o = out + (roi_begin + r) * c_out * bins;
      const T empty = T(0) / g.count;  // a bin without samples (NaN for an empty grid)
      using B = xsimd::batch<T>;
      int64_t i = 0;
      for (; i + int64_t(B::size) <= c_out * bins; i += B::size) B(empty).store_unaligned(o + i);
      for (; i < c_out * bins; ++i) o[i] = empty;
    }
    ys_.close();
    xs_.close();
    // Visit RoIs by image, then top to bottom in bands of 8 rows (a counting sort): a
    // bin's taps then sweep its plane in order instead of jumping (cache and prefetch).
    const int64_t bands = H / 8 + 2, keys = (max_batch + 1) * bands;
    Buffer<int64_t> key(static_cast<std::size_t>(n_)), start(static_cast<std::size_t>(keys + 1), 0);
    for (int64_t r = 0; r < n_; ++r) {
      const T band = geo_[r].start_h / T(8) + T(1);
      const int64_t b = band >= T(0) && band < T(bands) ? static_cast<int64_t>(band) : band < T(0) ? 0 : bands - 1;
      key[r] = geo_[r].batch * bands + b;
      ++start[key[r] + 1];
    }
    for (int64_t k = 0; k < keys; ++k) start[k + 1] += start[k];
    // Only RoIs with a sample on the map take part in the bins (the rest stay at 0/count).
    by_image_.assign(static_cast<std::size_t>(n_), -1);
    for (int64_t r = 0; r < n_; ++r) by_image_[start[key[r]]++] = on_map(r) ? r : -1;
    active_ = 0;
    for (int64_t i = 0; i < n_; ++i)
      if (by_image_[i] >= 0) by_image_[active_++] = by_image_[i];
    return true;
  }

  // Lays out bin `bin`: entries() and samples() until the next call.
  void select_bin(int64_t bin) {
    const int64_t PH = a_->pooled_height, PW = a_->pooled_width, ph = bin / PW, pw = bin % PW;
    entries_.clear();
    samples_.clear();
    for (int64_t i = 0; i < active_; ++i) {
      const int64_t r = by_image_[i];
      const int64_t first = static_cast<int64_t>(samples_.size());
      for (const AxisSample<T>* y = ys_.begin(r * PH, ph); y != ys_.end(r * PH, ph); ++y)
        for (const AxisSample<T>* x = xs_.begin(r * PW, pw); x != xs_.end(r * PW, pw); ++x) {
          const Sample<T> c = combine(*y, *x, a_->width);
          PlaneSample<T> p;
          for (int t = 0; t < 4; ++t) p.pos[t] = static_cast<int32_t>(c.pos[t]), p.w[t] = c.w[t];
          samples_.push_back(p);
        }
      if (static_cast<int64_t>(samples_.size()) > first)
        entries_.push_back(Entry{r, first, static_cast<int64_t>(samples_.size())});
    }
  }

  const Buffer<Entry>& entries() const { return entries_; }
  bool on_map(int64_t r) const {
    const int64_t PH = a_->pooled_height, PW = a_->pooled_width;
    return ys_.begin(r * PH, 0) != ys_.end(r * PH, PH - 1) && xs_.begin(r * PW, 0) != xs_.end(r * PW, PW - 1);
  }
  const PlaneSample<T>* samples() const { return samples_.data(); }
  const PsAlignRoi<T>& roi(int64_t r) const { return geo_[r]; }
  int64_t roi_index(int64_t r) const { return begin_ + r; }

 private:
  const RoiArgs<T>* a_ = nullptr;
  int64_t begin_ = 0, n_ = 0, active_ = 0;
  Buffer<PsAlignRoi<T>> geo_;
  Buffer<int64_t> by_image_;
  ValidAxis<T> ys_, xs_;
  Buffer<Entry> entries_;
  Buffer<PlaneSample<T>> samples_;
};

// Channel-plane order: input channel (co, bin) feeds only bin `bin` of output channel
// co, for every RoI. The per-RoI loop above touches a new plane for every output and
// misses cache; here each plane (16 KiB at 64x64) stays in L1 while every RoI reads
// it, two planes a pass.
template <typename T>
bool ps_roi_align_forward_by_plane(const RoiArgs<T>& a, const T* input, int64_t roi_begin, int64_t roi_end,
                                   T* out) {
  const int64_t HW = a.height * a.width, bins = a.pooled_height * a.pooled_width, c_out = a.channels / bins;
  // Kept per thread: its arrays (megabytes for large adaptive grids) would otherwise
  // come fresh from malloc each call, and on the caller's thread (one-thread runs) glibc
  // hands them back to the kernel on free, so every call page-faulted them in again.
  thread_local PsBinSamples<T> layout;
  if (!layout.build(a, roi_begin, roi_end, out)) return false;
  for (int64_t bin = 0; bin < bins; ++bin) {
    layout.select_bin(bin);
    const PlaneSample<T>* samples = layout.samples();
    // U output channels at once: each sample's offsets and weights are read once for
    // U planes, and the U sums are independent chains.
    constexpr int64_t U = 2;
    for (int64_t co0 = 0; co0 < c_out; co0 += U) {
      const int64_t u_end = std::min<int64_t>(U, c_out - co0);
      for (const auto& en : layout.entries()) {
        const PsAlignRoi<T>& g = layout.roi(en.roi);
        const T* plane[U];
        T sum[U];
        for (int64_t u = 0; u < U; ++u) {
          plane[u] = input + (g.batch * a.channels + (co0 + std::min(u, u_end - 1)) * bins + bin) * HW;
          sum[u] = T(0);
        }
        for (int64_t i = en.begin; i < en.end; ++i) {
          const PlaneSample<T>& p = samples[i];
#pragma GCC unroll 2
          for (int64_t u = 0; u < U; ++u)
            sum[u] += p.w[0] * plane[u][p.pos[0]] + p.w[1] * plane[u][p.pos[1]] + p.w[2] * plane[u][p.pos[2]] +
                      p.w[3] * plane[u][p.pos[3]];
        }
        T* o = out + (layout.roi_index(en.roi) * c_out + co0) * bins + bin;
        for (int64_t u = 0; u < u_end; ++u) o[u * bins] = sum[u] / g.count;
      }
    }
  }
  return true;
}

template <typename T>
void ps_roi_align_forward(const RoiArgs<T>& a, const T* input, int64_t roi_begin, int64_t roi_end, T* out) {
  if (!ps_roi_align_forward_by_plane(a, input, roi_begin, roi_end, out))
    ps_roi_align_forward_per_roi(a, input, roi_begin, roi_end, out);
}

template <typename T>
void ps_roi_align_backward(const RoiArgs<T>& a, const T* grad, int64_t cout_begin, int64_t cout_end,
                           T* grad_input) {
  const int64_t HW = a.height * a.width, bins = a.pooled_height * a.pooled_width, c_out = a.channels / bins;
  ValidAxis<T> ys, xs;
  Buffer<Sample<T>> s;
  Buffer<int64_t> first;
  for (int64_t k = 0; k < a.num_rois; ++k) {
    const PsAlignRoi<T> roi(a, k);
    roi.valid_samples(a, ys, xs, s, first);
    if (s.size() == 0) continue;
    for (int64_t bin = 0; bin < bins; ++bin) {
      if (first[bin] == first[bin + 1]) continue;
      for (int64_t co = cout_begin; co < cout_end; ++co) {
        T* plane = grad_input + (roi.batch * a.channels + co * bins + bin) * HW;
        const T g = grad[(k * c_out + co) * bins + bin];
        for (int64_t i = first[bin]; i < first[bin + 1]; ++i) {
          const Sample<T>& p = s[i];
          for (int corner = 0; corner < 4; ++corner) plane[p.pos[corner]] += g * p.w[corner] / roi.count;
        }
      }
    }
  }
}

template <typename T>
void ps_roi_pool_forward(const RoiArgs<T>& a, const T* input, int64_t roi_begin, int64_t roi_end, T* out) {
  const int64_t W = a.width, HW = a.height * W, bins = a.pooled_height * a.pooled_width, c_out = a.channels / bins;
  for (int64_t k = roi_begin; k < roi_end; ++k) {
    const PoolRoi<T> roi(a, k, /*plus_one=*/false, /*float_round=*/false);
    for (int64_t ph = 0; ph < a.pooled_height; ++ph)
      for (int64_t pw = 0; pw < a.pooled_width; ++pw) {
        const BinBounds bb = roi.bin(ph, pw, a.height - 1, W - 1);  // the forward clips to H-1, W-1
        const T area = static_cast<T>((bb.hend - bb.hstart) * (bb.wend - bb.wstart));
        const int64_t bin = ph * a.pooled_width + pw;
        for (int64_t co = 0; co < c_out; ++co) {
          const T* plane = input + (roi.batch * a.channels + co * bins + bin) * HW;
          T sum = 0;
          for (int64_t h = bb.hstart; h < bb.hend; ++h)
            for (int64_t w = bb.wstart; w < bb.wend; ++w) sum += plane[h * W + w];
          out[(k * c_out + co) * bins + bin] = bb.empty() ? T(0) : sum / area;
        }
      }
  }
}

template <typename T>
void ps_roi_pool_backward(const RoiArgs<T>& a, const T* grad, int64_t cout_begin, int64_t cout_end,
                          T* grad_input) {
  const int64_t W = a.width, HW = a.height * W, bins = a.pooled_height * a.pooled_width, c_out = a.channels / bins;
  for (int64_t k = 0; k < a.num_rois; ++k) {
    const PoolRoi<T> roi(a, k, /*plus_one=*/false, /*float_round=*/true);
    for (int64_t ph = 0; ph < a.pooled_height; ++ph)
      for (int64_t pw = 0; pw < a.pooled_width; ++pw) {
        const BinBounds bb = roi.bin(ph, pw, a.height, W);  // the backward clips to H, W (upstream quirk)
        const T area = static_cast<T>((bb.hend - bb.hstart) * (bb.wend - bb.wstart));
        const int64_t bin = ph * a.pooled_width + pw;
        for (int64_t co = cout_begin; co < cout_end; ++co) {
          T* plane = grad_input + (roi.batch * a.channels + co * bins + bin) * HW;
          const T diff = bb.empty() ? T(0) : grad[(k * c_out + co) * bins + bin] / area;
          for (int64_t h = bb.hstart; h < bb.hend; ++h)
            for (int64_t w = bb.wstart; w < bb.wend; ++w) plane[h * W + w] += diff;
        }
      }
  }
}

#define TVOPS_INSTANTIATE(T)                                                                                   \
  template void roi_pool_forward<T>(const RoiArgs<T>&, const T*, int64_t, int64_t, T*, int32_t*);              \
  template bool roi_pool_backward<T>(const RoiArgs<T>&, const T*, const int32_t*, int64_t, int64_t, T*);       \
  template void ps_roi_align_forward<T>(const RoiArgs<T>&, const T*, int64_t, int64_t, T*);                    \
  template void ps_roi_align_backward<T>(const RoiArgs<T>&, const T*, int64_t, int64_t, T*);                   \
  template void ps_roi_pool_forward<T>(const RoiArgs<T>&, const T*, int64_t, int64_t, T*);                     \
  template void ps_roi_pool_backward<T>(const RoiArgs<T>&, const T*, int64_t, int64_t, T*);
TVOPS_INSTANTIATE(float)
TVOPS_INSTANTIATE(double)
#undef TVOPS_INSTANTIATE

}  // namespace tvops::cpu::TVOPS_CPU_TIER
