// Pieces shared by the RoI kernels of one ISA tier (inside the tier namespace, like
// everything compiled per tier): bilinear samples with torchvision's clamping, the
// adaptive sampling grid, and the [bin][channel] -> [channel][bin] output store.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <type_traits>

#include "core/check.h"
#include "kernels/cpu/tier.h"
#include "kernels/cpu/transpose.h"

namespace tvops::cpu::TVOPS_CPU_TIER {
namespace {

// One bilinear sample: four pixel offsets (in pixels, y*W+x) and their weights.
// Samples outside the map read pixel 0 with zero weights, as torchvision's forward
// does (so a non-finite pixel 0 propagates the same way), and backward skips them.
template <typename T>
struct Sample {
  int64_t pos[4];
  T w[4];
  bool valid;
};

// ceil(bin size) samples per bin axis, as torchvision; NaN sizes take none, and a
// grid so large the op would run for hours is an error (torchvision just loops).
template <typename T>
int64_t adaptive_grid(const char* op, T bin_size, int64_t roi) {
  constexpr T kMaxGrid = T(1 << 14);
  if (std::isnan(bin_size)) return 0;
  if (std::ceil(bin_size) > kMaxGrid) {
    char message[256];
    std::snprintf(message, sizeof(message),
                  "%s: RoI %lld would take %g samples per bin side (its box is huge compared with the output "
                  "size); pass sampling_ratio > 0 or check the boxes",
                  op, static_cast<long long>(roi), double(std::ceil(bin_size)));
    detail::throw_value_error(message);
  }
  return std::ceil(bin_size) < -kMaxGrid ? -1 : static_cast<int64_t>(std::ceil(bin_size));
}

// One axis of a bilinear sample: torchvision clamps y and x independently, so a
// sample is the product of two of these (and separable grids compute each once).
template <typename T>
struct AxisSample {
  int64_t low, high;
  T l, h;  // weights of high and low
  bool valid;
};

template <typename T>
AxisSample<T> axis_sample(int64_t size, T v) {
  AxisSample<T> s{0, 0, 0, 0, false};
  if (!(v >= T(-1) && v <= T(size))) return s;  // negated so NaN counts as outside
  if (v <= 0) v = 0;
  s.low = static_cast<int64_t>(v);
  if (s.low >= size - 1) {
    s.high = s.low = size - 1;
    v = static_cast<T>(s.low);
  } else {
    s.high = s.low + 1;
  }
  s.l = v - static_cast<T>(s.low);
  s.h = T(1) - s.l;
  s.valid = true;
  return s;
}

template <typename T>
Sample<T> combine(const AxisSample<T>& y, const AxisSample<T>& x, int64_t width) {
  Sample<T> s{{0, 0, 0, 0}, {0, 0, 0, 0}, false};
  if (!y.valid || !x.valid) return s;
  s.w[0] = y.h * x.h;
  s.w[1] = y.h * x.l;
  s.w[2] = y.l * x.h;
  s.w[3] = y.l * x.l;
  s.pos[0] = y.low * width + x.low;
  s.pos[1] = y.low * width + x.high;
  s.pos[2] = y.high * width + x.low;
  s.pos[3] = y.high * width + x.high;
  s.valid = true;
  return s;
}

template <typename T>
Sample<T> bilinear_sample(int64_t height, int64_t width, T y, T x) {
  return combine(axis_sample(height, y), axis_sample(width, x), width);
}

// out[c * bins + bin] = acc[bin * C + c], converting to O (int32 argmax, say). The
// [bin][channel] block is larger than L1 (196 KiB at 14x14 x 256), so a scalar walk
// down its columns misses on every load: 4-byte copies go through register tiles.
template <typename T, typename O>
void store_transposed(const T* acc, int64_t bins, int64_t C, O* out) {
  if constexpr (sizeof(T) == 4 && std::is_same_v<T, O>) {
    transpose_32(acc, bins, C, C, out, bins);
  } else {
    for (int64_t c = 0; c < C; ++c)
      for (int64_t bin = 0; bin < bins; ++bin) out[c * bins + bin] = static_cast<O>(acc[bin * C + c]);
  }
}

}  // namespace
}  // namespace tvops::cpu::TVOPS_CPU_TIER
