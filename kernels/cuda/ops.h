// CUDA op entry points (internal), called by the front-ends in csrc/ops after the
// argument checks. Each runs on ctx.cuda_stream and allocates through ctx.allocator.
#pragma once

#include <utility>
#include <vector>

#include "ops/deform_conv2d_shape.h"
#include "tvops/ops.h"
#include "tvops/tensor.h"

namespace tvops::cuda {

Tensor nms(const Tensor& boxes, const Tensor& scores, double iou_threshold, const Context& ctx);
// torchvision's CUDA strategies: the coordinate trick up to 100k coordinates, per-category
// nms above (NaN categories dropped). idxs: int64, int32, float32 or float64 on the device.
Tensor batched_nms(const Tensor& boxes, const Tensor& scores, const Tensor& idxs, double iou_threshold,
                   const Context& ctx);

// Box utilities (boxes.cu): float32 / float64 boxes; pairwise_box_iou's inputs are
// [batch, n, 4] and [batch, m, 4] of one dtype, `shape` the output's.
Tensor box_convert(const Tensor& boxes, BoxFormat in_fmt, BoxFormat out_fmt, const Context& ctx);
Tensor box_area(const Tensor& boxes, BoxFormat fmt, const Context& ctx);
Tensor clip_boxes_to_image(const Tensor& boxes, int64_t height, int64_t width, const Context& ctx);
Tensor remove_small_boxes(const Tensor& boxes, double min_size, const Context& ctx);
Tensor pairwise_box_iou(const Tensor& boxes1, const Tensor& boxes2, const std::vector<int64_t>& shape, int64_t batch,
                        int64_t n, int64_t m, BoxIouKind kind, double eps, const Context& ctx);

// nvJPEG (jpeg_decode.cu, built when nvjpeg.h was found): whether the library loads, and
// the decode of CPU JPEG bytes to uint8 [C, H, W] on `device` (mode: ImageReadMode's value,
// UNCHANGED, GRAY or RGB, checked by the caller).
bool nvjpeg_available();
std::vector<Tensor> decode_jpegs(const std::vector<Tensor>& data, int mode, int device, const Context& ctx);

// RoI family (roi_align.cu, roi_pool.cu). `deterministic` backward: fixed-point sums,
// bit-identical from run to run (see README.md).
Tensor roi_align(const Tensor& input, const Tensor& rois, double spatial_scale, int64_t pooled_height,
                 int64_t pooled_width, int64_t sampling_ratio, bool aligned, const Context& ctx);
Tensor roi_align_backward(const Tensor& grad, const Tensor& rois, double spatial_scale, int64_t pooled_height,
                          int64_t pooled_width, int64_t batch, int64_t channels, int64_t height, int64_t width,
                          int64_t sampling_ratio, bool aligned, bool deterministic, const Context& ctx);
// levels: int64 [K] on the device; RoIs whose level is not a map index pool zeros.
Tensor multi_scale_roi_align(const std::vector<Tensor>& features, const std::vector<double>& scales,
                             const Tensor& rois, const Tensor& levels, int64_t pooled_height, int64_t pooled_width,
                             int64_t sampling_ratio, bool aligned, const Context& ctx);
std::vector<Tensor> multi_scale_roi_align_backward(const Tensor& grad, const Tensor& rois, const Tensor& levels,
                                                   const std::vector<double>& scales,
                                                   const std::vector<std::vector<int64_t>>& shapes,
                                                   int64_t sampling_ratio, bool aligned, bool deterministic,
                                                   const Context& ctx);
std::pair<Tensor, Tensor> ps_roi_align(const Tensor& input, const Tensor& rois, double spatial_scale,
                                       int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                                       const Context& ctx);
Tensor ps_roi_align_backward(const Tensor& grad, const Tensor& rois, double spatial_scale, int64_t pooled_height,
                             int64_t pooled_width, int64_t sampling_ratio, int64_t batch, int64_t channels,
                             int64_t height, int64_t width, bool deterministic, const Context& ctx);
std::pair<Tensor, Tensor> roi_pool(const Tensor& input, const Tensor& rois, double spatial_scale,
                                   int64_t pooled_height, int64_t pooled_width, const Context& ctx);
Tensor roi_pool_backward(const Tensor& grad, const Tensor& rois, const Tensor& argmax, int64_t pooled_height,
                         int64_t pooled_width, int64_t batch, int64_t channels, int64_t height, int64_t width,
                         bool deterministic, const Context& ctx);
std::pair<Tensor, Tensor> ps_roi_pool(const Tensor& input, const Tensor& rois, double spatial_scale,
                                      int64_t pooled_height, int64_t pooled_width, const Context& ctx);
Tensor ps_roi_pool_backward(const Tensor& grad, const Tensor& rois, double spatial_scale, int64_t pooled_height,
                            int64_t pooled_width, int64_t batch, int64_t channels, int64_t height, int64_t width,
                            bool deterministic, const Context& ctx);

// deform_conv2d (deform_conv2d.cu). The front-end has checked the shapes in `s` and
// passes input, weight, offset, mask (undefined unless s.use_mask) and bias (may be
// undefined) contiguous, of one floating dtype, on one device; s.batch > 0.
// allow_tf32: float32 may multiply in TF32 on tensor cores.
Tensor deform_conv2d(const Tensor& input, const Tensor& weight, const Tensor& offset, const Tensor& mask,
                     const Tensor& bias, const DeformConvShape& s, bool allow_tf32, const Context& ctx);
// {grad_input, grad_weight, grad_offset, grad_mask (undefined unless s.use_mask),
// grad_bias [Cout]}; grad is contiguous [N, Cout, Ho, Wo] of the inputs' dtype.
std::vector<Tensor> deform_conv2d_backward(const Tensor& grad, const Tensor& input, const Tensor& weight,
                                           const Tensor& offset, const Tensor& mask, const DeformConvShape& s,
                                           bool allow_tf32, const Context& ctx);

}  // namespace tvops::cuda
