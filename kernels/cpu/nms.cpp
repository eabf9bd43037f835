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

// The centre distance a pair with IoU > t can have, as a multiple of the query's own
// width (or height): the x-overlap exceeds t * max(w_i, w_j) since IoU <= overlap /
// max(w_i, w_j), which bounds |cx_i - cx_j| by w_i * max(1 - t, 1/(2t) - 1/2).
// (Thresholds >= 1 still search a little: rounding can put a computed IoU of
// near-identical boxes a hair above 1.)
inline double centre_reach(double t) {
  return t > 0 ? std::max({1 - t, 1 / (2 * t) - 0.5, 1e-3}) : std::numeric_limits<double>::infinity();
}

// nms_small scans the kept boxes by x bucket once this many are kept and 7 in 8 of the
// last window of queries were.
constexpr int64_t kBandFrom = 48, kBandWindow = 32;

// Kept boxes as arrays (x1, y1, x2, y2, area, ShareFilter part), `stride` apart.
template <typename T>
struct KeptArrays {
  T *x1, *y1, *x2, *y2, *area, *part;
  KeptArrays(T* base, int64_t stride)
      : x1(base), y1(x1 + stride), x2(y1 + stride), y2(x2 + stride), area(y2 + stride), part(area + stride) {}
  void clear(int64_t count) {  // empty boxes: x1 > x2
    using batch = xsimd::batch<T>;
    const batch one(T(1)), zero(T(0));
    for (int64_t k = 0; k < count; k += batch::size) {
      one.store_unaligned(x1 + k), one.store_unaligned(y1 + k), one.store_unaligned(area + k);
      zero.store_unaligned(x2 + k), zero.store_unaligned(y2 + k), zero.store_unaligned(part + k);
    }
  }
  void set(int64_t k, T bx1, T by1, T bx2, T by2, T barea, T bpart) {
    x1[k] = bx1, y1[k] = by1, x2[k] = bx2, y2[k] = by2, area[k] = barea, part[k] = bpart;
  }
};

template <typename T>
struct SmallScratch {
  using Index = xsimd::as_integer_t<T>;  // the integer type of T's width, for vector conversions
  Buffer<T> in;           // the class's boxes as arrays: x1, y1, x2, y2, area, centre, reach ends
  Buffer<T> kept, slots;  // KeptArrays of the kept boxes: in the order kept, by slot
  Buffer<Index> bucket;   // bucket of each box's centre and of its reach's two ends
  Buffer<int32_t> bucket_begin, fill;
};

// Few boxes (per-class NMS, ~250 a class in bnms-20k-80): a query scans kept boxes a
// vector at a time, with no grid to set up; see the two phases below.
template <typename T>
void nms_small(const T* boxes, int64_t n, double threshold, uint8_t* keep) {
  using batch = xsimd::batch<T>;
  using Index = typename SmallScratch<T>::Index;
  constexpr int64_t W = batch::size;
  // Scratch per thread, reused by every class of a batched call (one TLS lookup).
  thread_local SmallScratch<T> scratch;
  SmallScratch<T>& sc = scratch;
  const int64_t nv = (n + W - 1) / W * W;  // whole vectors
  sc.in.reserve(static_cast<std::size_t>(8 * nv));
  T *bx1 = sc.in.data(), *by1 = bx1 + nv, *bx2 = by1 + nv, *by2 = bx2 + nv, *barea = by2 + nv;
  T *centre = barea + nv, *reach_lo = centre + nv, *reach_hi = reach_lo + nv;
  for (int64_t i = 0; i < n; ++i) {
    bx1[i] = boxes[4 * i], by1[i] = boxes[4 * i + 1], bx2[i] = boxes[4 * i + 2], by2[i] = boxes[4 * i + 3];
    keep[i] = 1;
  }
  for (int64_t i = n; i < nv; ++i) bx1[i] = by1[i] = bx2[i] = by2[i] = T(0);  // padding: not proper

  // Areas, centres and the ends of each box's reach, a vector at a time; the span of
  // the proper boxes' centres (the only boxes that interact, see the top of this file).
  const T t = threshold_in<T>(threshold);
  const batch reach(static_cast<T>(centre_reach(threshold * (1 - 1e-5))));  // loosened: computed IoU can exceed the true one by ulps
  const batch zero(T(0)), half(T(0.5)), inf(std::numeric_limits<T>::infinity());
  batch lo_v = inf, hi_v = -inf;
  for (int64_t i = 0; i < nv; i += W) {
    const batch x1 = batch::load_unaligned(bx1 + i), x2 = batch::load_unaligned(bx2 + i);
    const batch w = x2 - x1, h = batch::load_unaligned(by2 + i) - batch::load_unaligned(by1 + i), ab = w * h;
    const auto proper = (w > zero) && (h > zero) && (ab > zero) && (ab < inf);
    const batch cx = half * x1 + half * x2;  // no overflow near the largest T
    batch r = w * reach;
    r = r + T(1e-5) * (r + xsimd::abs(cx));  // slack for rounding in the centres
    xsimd::select(proper, ab, -inf).store_unaligned(barea + i);  // -inf: not proper
    cx.store_unaligned(centre + i), (cx - r).store_unaligned(reach_lo + i), (cx + r).store_unaligned(reach_hi + i);
    lo_v = xsimd::min(lo_v, xsimd::select(proper, cx, inf));
    hi_v = xsimd::max(hi_v, xsimd::select(proper, cx, -inf));
  }
  alignas(64) T lo_l[W], hi_l[W];  // (xsimd 8 has no min/max reduction)
  lo_v.store_aligned(lo_l), hi_v.store_aligned(hi_l);
  T lo_cx = lo_l[0], hi_cx = hi_l[0];
  for (int64_t l = 1; l < W; ++l) lo_cx = std::min(lo_cx, lo_l[l]), hi_cx = std::max(hi_cx, hi_l[l]);
  if (!(lo_cx <= hi_cx)) return;  // no proper box

  // Kept boxes in the order kept, padded with empty boxes (x1 > x2: no intersection,
  // IoU 0) so that the scan needs no tail mask.
  const int64_t in_order = (n + 2 * W - 1) / W * W;
  sc.kept.reserve(static_cast<std::size_t>(6 * in_order));
  KeptArrays<T> kept(sc.kept.data(), in_order);
  kept.clear(in_order);
  const ShareFilter<T> filter(t);
  const batch tvb(t);
  // Does any kept box in a[k..end) (rounded up to whole vectors) have IoU > t with box i?
  auto suppressed_by = [&](int64_t i, const KeptArrays<T>& a, int64_t k, int64_t end) {
    const T ab = barea[i];
    const batch qx1(bx1[i]), qy1(by1[i]), qx2(bx2[i]), qy2(by2[i]), qarea(ab), qpart(filter.query(ab));
    for (; k < end; k += W) {
      const batch xx1 = xsimd::max(batch::load_unaligned(a.x1 + k), qx1);
      const batch yy1 = xsimd::max(batch::load_unaligned(a.y1 + k), qy1);
      const batch xx2 = xsimd::min(batch::load_unaligned(a.x2 + k), qx2);
      const batch yy2 = xsimd::min(batch::load_unaligned(a.y2 + k), qy2);
      const batch inter = xsimd::max(xx2 - xx1, zero) * xsimd::max(yy2 - yy1, zero);
      const auto near = inter > batch::load_unaligned(a.part + k) + qpart;
      if (xsimd::any(near) &&
          xsimd::any(near && div_exact(inter, (batch::load_unaligned(a.area + k) + qarea) - inter) > tvb))
        return true;
    }
    return false;
  };
  auto put = [&](KeptArrays<T>& a, int64_t k, int64_t i) {
    a.set(k, bx1[i], by1[i], bx2[i], by2[i], barea[i], filter.kept(barea[i]));
  };

  // While few boxes are kept, or many are suppressed (as around real objects), a query
  // scans the kept boxes in score order: the best-scoring ones, found first, are the
  // likely suppressors. The switch to the bucketed scan below waits for a window of
  // queries nearly all kept (early queries around objects are kept too: each object's
  // best box).
  int64_t i = 0, kept_count = 0;
  for (int64_t window_kept = 0;; window_kept = kept_count) {
    const int64_t window_end = std::min(n, i + kBandWindow);
    for (; i < window_end; ++i) {
      if (!(barea[i] > 0)) continue;  // not proper
      if (suppressed_by(i, kept, 0, kept_count))
        keep[i] = 0;
      else
        put(kept, kept_count++, i);
    }
    if (i == n) return;
    if (kept_count >= kBandFrom && 8 * (kept_count - window_kept) >= 7 * kBandWindow) break;
  }

  // Then (most boxes kept, so most queries scan everything kept) every proper box gets
  // a slot in arrays ordered by buckets of ~8 boxes over the span of x centres (one
  // bucket if the span is degenerate); a slot holds an empty box until its box is
  // kept. A bucket position is monotonic in the coordinate, so a centre inside a
  // query's reach lands in the buckets between those of the reach's ends: the query
  // scans that one run of slots, with no per-bucket loop exits. Slots past the run
  // are real slots or padding. On spread-out boxes the run is a fraction of the kept
  // set; it is never more than twice the kept set (all slots against the kept half).
  int64_t buckets = std::max<int64_t>(1, n / 8);
  T scale = static_cast<T>(double(buckets) / (double(hi_cx) - double(lo_cx)));
  if (!(scale > 0) || !std::isfinite(scale) || !std::isfinite((hi_cx - lo_cx) * scale)) buckets = 1, scale = 0;
  sc.bucket.reserve(static_cast<std::size_t>(3 * nv));
  Index *in_bucket = sc.bucket.data(), *lo_bucket = in_bucket + nv, *hi_bucket = lo_bucket + nv;
  const batch origin(lo_cx), scale_v(scale), top(T(buckets - 1));
  for (int64_t v = 0; v < nv; v += W) {
    for (int a = 0; a < 3; ++a) {  // clamped to the buckets (a reach can be infinite at t = 0)
      const T* at = a == 0 ? centre : a == 1 ? reach_lo : reach_hi;
      const batch pos = xsimd::floor((batch::load_unaligned(at + v) - origin) * scale_v);
      xsimd::to_int(xsimd::min(xsimd::max(pos, zero), top)).store_unaligned(sc.bucket.data() + a * nv + v);
    }
  }
  sc.bucket_begin.assign(buckets + 1, 0);
  int32_t* bucket_begin = sc.bucket_begin.data();
  for (int64_t j = 0; j < n; ++j) bucket_begin[in_bucket[j] + 1] += barea[j] > 0;
  for (int64_t c = 0; c < buckets; ++c) bucket_begin[c + 1] += bucket_begin[c];
  sc.fill.assign(buckets, 0);
  int32_t* fill = sc.fill.data();
  const int64_t by_slot = (bucket_begin[buckets] + 2 * W - 1) / W * W;
  sc.slots.reserve(static_cast<std::size_t>(6 * by_slot));
  KeptArrays<T> slots(sc.slots.data(), by_slot);
  slots.clear(by_slot);
  // A kept box takes the next free slot of its bucket (each bucket has room for all of
  // its proper boxes).
  auto place = [&](int64_t j) {
    const Index c = in_bucket[j];
    put(slots, bucket_begin[c] + fill[c]++, j);
  };
  for (int64_t j = 0; j < i; ++j)
    if (barea[j] > 0 && keep[j]) place(j);
  for (; i < n; ++i) {
    if (!(barea[i] > 0)) continue;  // not proper
    if (suppressed_by(i, slots, bucket_begin[lo_bucket[i]], bucket_begin[hi_bucket[i] + 1])) {
      keep[i] = 0;
      continue;
    }
    place(i);
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
  const double reach = centre_reach(t);
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
