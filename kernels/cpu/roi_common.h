// Pieces shared by the RoI kernels of one ISA tier (inside the tier namespace, like
// everything compiled per tier): bilinear samples with torchvision's clamping, the
// adaptive sampling grid, and the [bin][channel] -> [channel][bin] output store.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>

#include "core/check.h"
#include "kernels/cpu/tier.h"

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

template <typename T>
Sample<T> bilinear_sample(int64_t height, int64_t width, T y, T x) {
  Sample<T> s{{0, 0, 0, 0}, {0, 0, 0, 0}, false};
  // Written negated so NaN coordinates count as outside.
  if (!(y >= T(-1) && y <= T(height) && x >= T(-1) && x <= T(width))) return s;
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  int64_t y_low = static_cast<int64_t>(y), x_low = static_cast<int64_t>(x), y_high, x_high;
  if (y_low >= height - 1) {
    y_high = y_low = height - 1;
    y = static_cast<T>(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1;
    x = static_cast<T>(x_low);
  } else {
    x_high = x_low + 1;
  }
  const T ly = y - static_cast<T>(y_low), lx = x - static_cast<T>(x_low), hy = T(1) - ly, hx = T(1) - lx;
  s.w[0] = hy * hx;
  s.w[1] = hy * lx;
  s.w[2] = ly * hx;
  s.w[3] = ly * lx;
  s.pos[0] = y_low * width + x_low;
  s.pos[1] = y_low * width + x_high;
  s.pos[2] = y_high * width + x_low;
  s.pos[3] = y_high * width + x_high;
  s.valid = true;
  return s;
}

// out[c * bins + bin] = acc[bin * C + c], converting to O (int32 argmax, say).
template <typename T, typename O>
void store_transposed(const T* acc, int64_t bins, int64_t C, O* out) {
  for (int64_t c = 0; c < C; ++c)
    for (int64_t bin = 0; bin < bins; ++bin) out[c * bins + bin] = static_cast<O>(acc[bin * C + c]);
}

}  // namespace
}  // namespace tvops::cpu::TVOPS_CPU_TIER
