// Pairwise IoU, GIoU, DIoU and CIoU with torchvision's formulas and operation order
// (ops/boxes.py), vectorised over the second set of boxes.
#include "kernels/cpu/box_iou.h"

#include <xsimd/xsimd.hpp>

#include "kernels/cpu/vec_div.h"

#include <algorithm>

namespace tvops::cpu::TVOPS_CPU_TIER {

namespace {

template <typename B>
inline B clamp0(B v) { return xsimd::max(v, B(0)); }

template <typename T, typename B, int Kind>
inline B pair_value(const BoxSoA<T>& a, int64_t i, const B& bx1, const B& by1, const B& bx2, const B& by2,
                    const B& barea, const B& bcx, const B& bcy, const B& batan, T eps) {
  const B ax1(a.x1[i]), ay1(a.y1[i]), ax2(a.x2[i]), ay2(a.y2[i]);
  // _box_inter_union
  const B w = clamp0(xsimd::min(ax2, bx2) - xsimd::max(ax1, bx1));
  const B h = clamp0(xsimd::min(ay2, by2) - xsimd::max(ay1, by1));
  const B inter = w * h;
  const B uni = (B(a.area[i]) + barea) - inter;
  const B iou = div_exact(inter, uni);
  if constexpr (Kind == 0) return iou;
  // The enclosing box.
  const B wi = clamp0(xsimd::max(ax2, bx2) - xsimd::min(ax1, bx1));
  const B hi = clamp0(xsimd::max(ay2, by2) - xsimd::min(ay1, by1));
  if constexpr (Kind == 1) {
    const B area_i = wi * hi;
    return iou - div_exact(area_i - uni, area_i);
  } else {
    const B diag = (wi * wi + hi * hi) + B(eps);
    const B dx = B(a.cx[i]) - bcx, dy = B(a.cy[i]) - bcy;
    const B diou = iou - div_exact(dx * dx + dy * dy, diag);
    if constexpr (Kind == 2) return diou;
    const B d = B(a.atan_ratio[i]) - batan;
    const B v = B(T(4.0 / (3.14159265358979323846 * 3.14159265358979323846))) * (d * d);
    const B alpha = div_exact(v, ((B(T(1)) - iou) + v) + B(eps));
    return diou - alpha * v;
  }
}

template <typename T, int Kind>
void rows(const BoxSoA<T>& a, int64_t r0, int64_t r1, const BoxSoA<T>& b, int64_t m, T eps, T* out) {
  using B = xsimd::batch<T>;
  constexpr int64_t W = B::size;
  const int64_t m_vec = m - m % W;
  for (int64_t j = 0; j < m_vec; j += W) {
    const B bx1 = B::load_unaligned(b.x1 + j), by1 = B::load_unaligned(b.y1 + j);
    const B bx2 = B::load_unaligned(b.x2 + j), by2 = B::load_unaligned(b.y2 + j);
    const B barea = B::load_unaligned(b.area + j);
    B bcx(T(0)), bcy(T(0)), batan(T(0));
    if constexpr (Kind >= 2) {
      bcx = B::load_unaligned(b.cx + j);
      bcy = B::load_unaligned(b.cy + j);
    }
    if constexpr (Kind == 3) batan = B::load_unaligned(b.atan_ratio + j);
    for (int64_t i = r0; i < r1; ++i)
      pair_value<T, B, Kind>(a, i, bx1, by1, bx2, by2, barea, bcx, bcy, batan, eps).store_unaligned(out + i * m + j);
  }
  // Tail columns: the same arithmetic on one-lane values.
  for (int64_t j = m_vec; j < m; ++j) {
    using S = xsimd::batch<T>;  // broadcast lanes, store lane 0
    alignas(64) T lane[S::size];
    const S bx1(b.x1[j]), by1(b.y1[j]), bx2(b.x2[j]), by2(b.y2[j]), barea(b.area[j]);
    const S bcx(Kind >= 2 ? b.cx[j] : T(0)), bcy(Kind >= 2 ? b.cy[j] : T(0));
    const S batan(Kind == 3 ? b.atan_ratio[j] : T(0));
    for (int64_t i = r0; i < r1; ++i) {
      pair_value<T, S, Kind>(a, i, bx1, by1, bx2, by2, barea, bcx, bcy, batan, eps).store_aligned(lane);
      out[i * m + j] = lane[0];
    }
  }
}

}  // namespace

template <typename T>
void pairwise_box_iou(const BoxSoA<T>& a, int64_t row_begin, int64_t row_end, const BoxSoA<T>& b, int64_t m,
                      int kind, T eps, T* out) {
  switch (kind) {
    case 0: return rows<T, 0>(a, row_begin, row_end, b, m, eps, out);
    case 1: return rows<T, 1>(a, row_begin, row_end, b, m, eps, out);
    case 2: return rows<T, 2>(a, row_begin, row_end, b, m, eps, out);
    default: return rows<T, 3>(a, row_begin, row_end, b, m, eps, out);
  }
}

template void pairwise_box_iou<float>(const BoxSoA<float>&, int64_t, int64_t, const BoxSoA<float>&, int64_t, int,
                                      float, float*);
template void pairwise_box_iou<double>(const BoxSoA<double>&, int64_t, int64_t, const BoxSoA<double>&, int64_t,
                                       int, double, double*);

}  // namespace tvops::cpu::TVOPS_CPU_TIER
