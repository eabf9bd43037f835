// Greedy NMS, exact to torchvision's CPU kernel, without its O(N^2) sweep.
//
// torchvision visits boxes in score order and lets every kept box test every later
// box. The same result comes from the other direction: a box is kept iff no box
// kept before it has IoU > threshold with it. So each box only queries the boxes
// kept so far, and only those that can reach the threshold:
//  * For threshold >= 0 only "proper" boxes interact: with a non-positive width or
//    height, or a non-finite area, torchvision's IoU is 0, -0 or NaN, never above
//    the threshold (such boxes are always kept and never suppress).
//  * IoU > t forces the centres close: the x-overlap must exceed t*max(w_i, w_j),
//    so |cx_i - cx_j| < w_j * max(1 - t, 1/(2t) - 1/2) (likewise in y), and also
//    < (w_i + w_j) / 2. Kept boxes live in a grid of their centres, and a query
//    scans only the cells within that radius.
// IoU itself is computed exactly as torchvision does (same operand order, in T,
// no FMA contraction: the build passes -ffp-contract=off), so the kept set is
// bit-identical. Negative thresholds take the plain sweep.
#include "kernels/cpu/nms.h"

#include <xsimd/xsimd.hpp>

#include "kernels/cpu/vec_div.h"

#include "kernels/cpu/buffer.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tvops::cpu::TVOPS_CPU_TIER {

namespace {

template <typename T>
inline T iou_torchvision(T ix1, T iy1, T ix2, T iy2, T iarea, const T* b, T area) {
  // std::max/std::min argument order as in torchvision, so NaN behaves the same.
  T xx1 = std::max(ix1, b[0]), yy1 = std::max(iy1, b[1]);
  T xx2 = std::min(ix2, b[2]), yy2 = std::min(iy2, b[3]);
  T w = std::max(static_cast<T>(0), xx2 - xx1);
  T h = std::max(static_cast<T>(0), yy2 - yy1);
  T inter = w * h;
  return inter / (iarea + area - inter);
}

// torchvision's loop, for thresholds where the pruning above does not hold.
template <typename T>
void nms_dense(const T* boxes, int64_t n, double threshold, uint8_t* keep) {
  Buffer<T> areas(n);
  for (int64_t i = 0; i < n; ++i)
    areas[i] = (boxes[4 * i + 2] - boxes[4 * i]) * (boxes[4 * i + 3] - boxes[4 * i + 1]);
  Buffer<uint8_t> suppressed(n, 0);
  for (int64_t i = 0; i < n; ++i) {
    keep[i] = !suppressed[i];
    if (suppressed[i]) continue;
    const T* bi = boxes + 4 * i;
    for (int64_t j = i + 1; j < n; ++j) {
      if (suppressed[j]) continue;
      T ovr = iou_torchvision(bi[0], bi[1], bi[2], bi[3], areas[i], boxes + 4 * j, areas[j]);
      if (ovr > threshold) suppressed[j] = 1;
    }
  }
}

// The largest T whose comparison `x > t` equals torchvision's `double(x) > threshold`.
template <typename T>
T threshold_in(double threshold) {
  T t = static_cast<T>(threshold);
  if (static_cast<double>(t) > threshold) t = std::nextafter(t, -std::numeric_limits<T>::infinity());
  return t;
}

// A filter before IoU's division (the scans' dearest step; they are bound by their
// vector operations). IoU > t needs inter > t * union = t (a_k + a_q - inter), i.e.
// inter > (a_k + a_q) t / (1 + t). With share = t / (1 + t) (1 - 2^-16), stored per kept
// box as a_k * share and per query as a_q * share, a pair whose inter is at most their
// sum can't exceed t: the margin covers every rounding here and in IoU's own union
// and quotient (2^-24 relative each) while the products are normal numbers. A query
// whose product is below 2^-100 (or t < 2^-100) sets its part to -inf, which sends
// every pair to the exact test. Only vectors with a lane past the filter divide.
template <typename T>
struct ShareFilter {
  static constexpr T kSmall = T(0x1p-100);
  T share;
  explicit ShareFilter(T t)
      : share(t >= kSmall ? static_cast<T>(double(t) / (1 + double(t)) * (1 - 0x1p-16)) : T(0)) {}
  T kept(T area) const { return area * share; }
  T query(T area) const {
    const T q = area * share;
    return q >= kSmall ? q : -std::numeric_limits<T>::infinity();
  }
};

// Lane indices 0..63, to mask vector tails (constant-initialised: no load-time code).
template <typename T>
struct Lanes {
  static constexpr T value[64] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                  16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
                                  32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
                                  48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};
};

// Kept boxes of one grid, stored by cell in structure-of-arrays form.
template <typename T>
struct KeptGrid {
  using batch = xsimd::batch<T>;
  static constexpr int64_t W = batch::size;

  Buffer<T> x1, y1, x2, y2, area, part;  // slot-ordered, padded by W; part: ShareFilter::kept
  Buffer<int64_t> begin, count;    // per cell
  double min_x = 0, min_y = 0, cell_w = 1, cell_h = 1;
  int64_t gx = 1, gy = 1;

  // Cell of a coordinate, clamped to the grid (NaN and infinities included).
  static int64_t cell_of(double v, double origin, double width, int64_t cells) {
    double c = std::floor((v - origin) / width);
    return !(c > 0) ? 0 : c >= double(cells) ? cells - 1 : int64_t(c);
  }
  int64_t cell_x(double cx) const { return cell_of(cx, min_x, cell_w, gx); }
  int64_t cell_y(double cy) const { return cell_of(cy, min_y, cell_h, gy); }

  // Does any kept box of cell c have IoU > t with box b (area ab)?
  bool suppresses(int64_t c, const T* b, T ab, T t, T query_part) const {
    const int64_t base = begin[c], cnt = count[c];
    const batch bx1(b[0]), by1(b[1]), bx2(b[2]), by2(b[3]), barea(ab), tv(t), zero(T(0)), qpart(query_part);
    for (int64_t k = 0; k < cnt; k += W) {
      const int64_t s = base + k;
      // Kept box = torchvision's "i": xx1 = max(ix1, x1[j]) etc.
      batch xx1 = xsimd::max(batch::load_unaligned(&x1[s]), bx1);
      batch yy1 = xsimd::max(batch::load_unaligned(&y1[s]), by1);
      batch xx2 = xsimd::min(batch::load_unaligned(&x2[s]), bx2);
      batch yy2 = xsimd::min(batch::load_unaligned(&y2[s]), by2);
      batch w = xsimd::max(xx2 - xx1, zero);
      batch h = xsimd::max(yy2 - yy1, zero);
      batch inter = w * h;
      auto hit = inter > batch::load_unaligned(&part[s]) + qpart;
      if (cnt - k < W) hit = hit && (batch::load_unaligned(Lanes<T>::value) < batch(T(cnt - k)));
      if (xsimd::any(hit) &&
          xsimd::any(hit && div_exact(inter, (batch::load_unaligned(&area[s]) + barea) - inter) > tv))
        return true;
    }
    return false;
  }
};

// Below this many interacting boxes a single cell wins (measured on AVX-512 with
// bnms-20k-80, ~250 boxes a class: 0.85 ms against 1.6 ms with the grid).
constexpr int64_t kOneCellBelow = 512;

// Few boxes (per-class NMS, ~250 a class in bnms-20k-80): every box scans all boxes
// kept so far, a vector of them at a time. No grid, centres or radii to set up, and
// one allocation: the grid's bookkeeping costs more than it saves here.
template <typename T>
void nms_small(const T* boxes, int64_t n, double threshold, uint8_t* keep) {
  using batch = xsimd::batch<T>;
  constexpr int64_t W = batch::size;
  const int64_t stride = n + W;
  // Slots past the last kept box hold an empty box (x1 > x2: no intersection, IoU 0),
  // so the scan needs no tail mask.
  thread_local Buffer<T> soa;  // one per thread, reused by every class of a batched call
  soa.reserve(static_cast<std::size_t>(6 * stride));
  T *x1 = soa.data(), *y1 = x1 + stride, *x2 = y1 + stride, *y2 = x2 + stride, *area = y2 + stride;
  T* part = area + stride;
  for (int64_t k = 0; k < stride; ++k) x1[k] = y1[k] = T(1), x2[k] = y2[k] = part[k] = T(0), area[k] = T(1);
  const T t = threshold_in<T>(threshold);
  const ShareFilter<T> filter(t);
  const batch zero(T(0)), tvb(t);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T* b = boxes + 4 * i;
    const T w = b[2] - b[0], h = b[3] - b[1], ab = w * h;
    keep[i] = 1;
    // Only proper boxes interact (see the top of this file).
    if (!(w > 0 && h > 0 && ab > 0 && std::isfinite(ab))) continue;
    const batch bx1(b[0]), by1(b[1]), bx2(b[2]), by2(b[3]), barea(ab), qpart(filter.query(ab));
    bool suppressed = false;
    for (int64_t k = 0; k < kept && !suppressed; k += W) {
      const batch xx1 = xsimd::max(batch::load_unaligned(x1 + k), bx1);
      const batch yy1 = xsimd::max(batch::load_unaligned(y1 + k), by1);
      const batch xx2 = xsimd::min(batch::load_unaligned(x2 + k), bx2);
      const batch yy2 = xsimd::min(batch::load_unaligned(y2 + k), by2);
      const batch inter = xsimd::max(xx2 - xx1, zero) * xsimd::max(yy2 - yy1, zero);
      const auto near = inter > batch::load_unaligned(part + k) + qpart;
      suppressed = xsimd::any(near) &&
                   xsimd::any(near && div_exact(inter, (batch::load_unaligned(area + k) + barea) - inter) > tvb);
    }
    if (suppressed) {
      keep[i] = 0;
      continue;
    }
    x1[kept] = b[0], y1[kept] = b[1], x2[kept] = b[2], y2[kept] = b[3], area[kept] = ab, part[kept] = filter.kept(ab);
    ++kept;
  }
}

template <typename T>
void nms_grid(const T* boxes, int64_t n, double threshold, uint8_t* keep) {
  // Which boxes can interact, their areas, centres and search radii.
  Buffer<T> areas(n);
  Buffer<int64_t> members;  // proper boxes, in score order
  members.reserve(n);
  double max_w = 0, max_h = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T* b = boxes + 4 * i;
    T w = b[2] - b[0], h = b[3] - b[1];
    areas[i] = w * h;
    keep[i] = 1;
    if (w > 0 && h > 0 && areas[i] > 0 && std::isfinite(areas[i])) {
      members.push_back(i);
      max_w = std::max(max_w, double(w));
      max_h = std::max(max_h, double(h));
    }
  }
  const int64_t m = static_cast<int64_t>(members.size());
  if (m < 2) return;

  // Computed IoU can exceed the true IoU by a few ulps: loosen t for the pruning.
  const double t = threshold * (1 - 1e-5);
  // (Thresholds >= 1 still search a small radius: rounding can put a computed IoU
  // of near-identical boxes a hair above 1.)
  const double reach = t > 0 ? std::max({1 - t, 1 / (2 * t) - 0.5, 1e-3})
                             : std::numeric_limits<double>::infinity();
  Buffer<double> cx(m), cy(m), rx(m), ry(m);
  double min_x = INFINITY, max_x = -INFINITY, min_y = INFINITY, max_y = -INFINITY, sum_rx = 0, sum_ry = 0;
  for (int64_t k = 0; k < m; ++k) {
    const T* b = boxes + 4 * members[k];
    double w = double(b[2]) - double(b[0]), h = double(b[3]) - double(b[1]);
    cx[k] = 0.5 * double(b[0]) + 0.5 * double(b[2]);  // no overflow near DBL_MAX
    cy[k] = 0.5 * double(b[1]) + 0.5 * double(b[3]);
    rx[k] = std::min(w * reach, 0.5 * w + 0.5 * max_w);
    ry[k] = std::min(h * reach, 0.5 * h + 0.5 * max_h);
    rx[k] += 1e-6 * (rx[k] + std::abs(cx[k]));  // slack for rounding in the centres
    ry[k] += 1e-6 * (ry[k] + std::abs(cy[k]));
    min_x = std::min(min_x, cx[k]); max_x = std::max(max_x, cx[k]);
    min_y = std::min(min_y, cy[k]); max_y = std::max(max_y, cy[k]);
    sum_rx += rx[k];
    sum_ry += ry[k];
  }

  // Cells about one mean radius wide: a query then spans ~3x3 cells.
  KeptGrid<T> g;
  const int64_t max_cells_axis = std::max<int64_t>(1, int64_t(std::sqrt(4.0 * double(m))));
  g.min_x = min_x;
  g.min_y = min_y;
  // Extreme coordinates (spans or radii that overflow double) fall back to one cell,
  // which is still exact, only slower.
  // Few boxes (per-class NMS): one cell, i.e. a vector scan over all kept boxes,
  // beats the grid's bookkeeping.
  const bool one_cell = m <= kOneCellBelow;
  auto cells_along = [&](double lo, double hi, double mean_r, double& width) -> int64_t {
    width = std::max(mean_r, (hi - lo) / double(max_cells_axis));
    if (one_cell) width = INFINITY;
    const double cells = (hi - lo) / width;
    if (!std::isfinite(width) || !(width > 0) || !std::isfinite(cells)) {
      width = 1;
      return 1;
    }
    return std::min<int64_t>(max_cells_axis, int64_t(cells) + 1);
  };
  g.gx = cells_along(min_x, max_x, sum_rx / double(m), g.cell_w);
  g.gy = cells_along(min_y, max_y, sum_ry / double(m), g.cell_h);

  // Counting sort of the members by cell: each cell gets room for all its members.
  Buffer<int64_t> cell(m);
  g.begin.assign(g.gx * g.gy + 1, 0);
  g.count.assign(g.gx * g.gy, 0);
  for (int64_t k = 0; k < m; ++k) {
    cell[k] = g.cell_y(cy[k]) * g.gx + g.cell_x(cx[k]);
    ++g.begin[cell[k] + 1];
  }
  for (int64_t c = 0; c < g.gx * g.gy; ++c) g.begin[c + 1] += g.begin[c];
  const std::size_t slots = static_cast<std::size_t>(m + KeptGrid<T>::W);
  g.x1.assign(slots, T(0)); g.y1.assign(slots, T(0));
  g.x2.assign(slots, T(0)); g.y2.assign(slots, T(0)); g.area.assign(slots, T(0)); g.part.assign(slots, T(0));

  const T tv = threshold_in<T>(threshold);
  const ShareFilter<T> filter(tv);
  for (int64_t k = 0; k < m; ++k) {
    const int64_t i = members[k];
    const T* b = boxes + 4 * i;
    const int64_t cx0 = g.cell_x(cx[k] - rx[k]), cx1 = g.cell_x(cx[k] + rx[k]);
    const int64_t cy0 = g.cell_y(cy[k] - ry[k]), cy1 = g.cell_y(cy[k] + ry[k]);
    bool suppressed = false;
    for (int64_t yc = cy0; yc <= cy1 && !suppressed; ++yc)
      for (int64_t xc = cx0; xc <= cx1 && !suppressed; ++xc)
        suppressed = g.suppresses(yc * g.gx + xc, b, areas[i], tv, filter.query(areas[i]));
    if (suppressed) {
      keep[i] = 0;
      continue;
    }
    const int64_t s = g.begin[cell[k]] + g.count[cell[k]]++;
    g.x1[s] = b[0]; g.y1[s] = b[1]; g.x2[s] = b[2]; g.y2[s] = b[3]; g.area[s] = areas[i];
    g.part[s] = filter.kept(areas[i]);
  }
}

}  // namespace

template <typename T>
void nms_sorted(const T* boxes, int64_t n, double threshold, uint8_t* keep) {
  if (n <= 0) return;
  if (std::isnan(threshold)) {  // `ovr > NaN` never holds: everything is kept
    std::fill(keep, keep + n, uint8_t(1));
  } else if (threshold < 0) {
    nms_dense(boxes, n, threshold, keep);
  } else if (n <= kOneCellBelow) {
    nms_small(boxes, n, threshold, keep);
  } else {
    nms_grid(boxes, n, threshold, keep);
  }
}

template void nms_sorted<float>(const float*, int64_t, double, uint8_t*);
template void nms_sorted<double>(const double*, int64_t, double, uint8_t*);

}  // namespace tvops::cpu::TVOPS_CPU_TIER
