// Detection operators, with torchvision's semantics (see OPS.md in the design notes).
#pragma once

#include "tvops/export.h"
#include "tvops/tensor.h"

namespace tvops {

// Greedy non-maximum suppression. boxes: [N, 4] (x1, y1, x2, y2), scores: [N], same
// float dtype (float16/bfloat16 are computed in float32). Returns int64 indices of
// the kept boxes in decreasing score order, on the boxes' device. A box is dropped
// when its IoU with a kept, higher-scoring box is strictly greater than iou_threshold.
TVOPS_API Tensor nms(const Tensor& boxes, const Tensor& scores, double iou_threshold,
                     const Context& ctx = {});

// NMS independently per category: boxes with different idxs never suppress each
// other. idxs: [N] of any integer, bool or float dtype. Same result as
// torchvision.ops.batched_nms on the CPU: its coordinate-offset strategy up to 1000
// boxes, per-class NMS above (boxes whose category is NaN are dropped there, as in
// torchvision). Ties in score come out in index order. CPU tensors only for now.
TVOPS_API Tensor batched_nms(const Tensor& boxes, const Tensor& scores, const Tensor& idxs,
                             double iou_threshold, const Context& ctx = {});

}  // namespace tvops
