// CPU NMS kernels of one ISA tier (see tier.h).
#pragma once

#include <cstdint>

#include "kernels/cpu/tier.h"

namespace tvops::cpu::TVOPS_CPU_TIER {

// Fills keep[r] for boxes in score order; see NmsSortedF32 in kernel_table.h.
template <typename T>
void nms_sorted(const T* boxes, int64_t n, double threshold, uint8_t* keep);

}  // namespace tvops::cpu::TVOPS_CPU_TIER
