// Score ordering shared by the NMS family (internal).
#pragma once

#include <cstdint>

#include "core/uninit_vector.h"
#include "tvops/tensor.h"

namespace tvops::detail {

// Indices that sort a contiguous 1-D float32/float64 CPU tensor in descending order
// the way torch.sort(descending=True, stable=True) does: NaN first, ties (and
// +0/-0) in index order.
UninitVector<int64_t> descending_order(const Tensor& scores);

}  // namespace tvops::detail
