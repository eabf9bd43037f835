// CUDA op entry points (internal), called by the front-ends in csrc/ops after the
// argument checks. Each runs on ctx.cuda_stream and allocates through ctx.allocator.
#pragma once

#include "tvops/tensor.h"

namespace tvops::cuda {

Tensor nms(const Tensor& boxes, const Tensor& scores, double iou_threshold, const Context& ctx);

}  // namespace tvops::cuda
