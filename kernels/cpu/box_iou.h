// CPU pairwise box IoU kernels of one ISA tier (see tier.h).
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/tier.h"


namespace tvops::cpu::TVOPS_CPU_TIER {

// out[i * m + j] for rows i in [row_begin, row_end) of `a` ([n, 4] xyxy, its areas,
// centres and atan ratios in the a_* arrays) against all m boxes of `b`.
// kind: 0 IoU, 1 generalized, 2 distance, 3 complete.
template <typename T>
void pairwise_box_iou(const BoxSoA<T>& a, int64_t row_begin, int64_t row_end, const BoxSoA<T>& b, int64_t m,
                      int kind, T eps, T* out);

}  // namespace tvops::cpu::TVOPS_CPU_TIER
