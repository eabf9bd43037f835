// Detection operators, with torchvision's semantics (see OPS.md in the design notes).
#pragma once

#include <string>
#include <utility>
#include <vector>

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
// other. idxs: [N] of any integer, bool or float dtype (CUDA: int64, int32, float32,
// float64). Same result as torchvision.ops.batched_nms on that device: its
// coordinate-offset strategy up to 1000 boxes on the CPU (25000 on CUDA), per-class
// NMS above (boxes whose category is NaN are dropped there, as in torchvision). Ties
// in score come out in index order.
TVOPS_API Tensor batched_nms(const Tensor& boxes, const Tensor& scores, const Tensor& idxs,
                             double iou_threshold, const Context& ctx = {});

// ---- Box utilities (torchvision.ops.boxes). Boxes are [..., 4]. ----

enum class BoxFormat { XYXY, XYWH, CXCYWH };
TVOPS_API BoxFormat box_format_from_string(const std::string& name);  // "xyxy", "xywh", "cxcywh"

// CUDA box utilities take float32 or float64 boxes (on the boxes' device and ctx's stream).
// Converts between box formats. Float dtypes keep their dtype; integer boxes stay
// integer between xyxy and xywh and become float32 through cxcywh (as in torch).
TVOPS_API Tensor box_convert(const Tensor& boxes, BoxFormat in_fmt, BoxFormat out_fmt, const Context& ctx = {});
// [...] areas. float16/bfloat16 give float32, small integer types int32 (torchvision's _upcast).
TVOPS_API Tensor box_area(const Tensor& boxes, BoxFormat fmt = BoxFormat::XYXY, const Context& ctx = {});
// x clamped to [0, width], y to [0, height]; same shape and dtype.
TVOPS_API Tensor clip_boxes_to_image(const Tensor& boxes, int64_t height, int64_t width, const Context& ctx = {});
// int64 indices (ascending) of the [N, 4] xyxy boxes whose width and height are >= min_size.
TVOPS_API Tensor remove_small_boxes(const Tensor& boxes, double min_size, const Context& ctx = {});

// Pairwise IoU family between xyxy boxes [..., N, 4] and [..., M, 4] (same leading
// dims) -> [..., N, M]: plain, generalized, distance and complete IoU, with
// torchvision's formulas. Float32 results for float16/bfloat16/integer boxes.
enum class BoxIouKind { IoU, Generalized, Distance, Complete };
TVOPS_API Tensor pairwise_box_iou(const Tensor& boxes1, const Tensor& boxes2, BoxIouKind kind = BoxIouKind::IoU,
                                  double eps = 1e-7, const Context& ctx = {});

// ---- RoI operators ----

// torchvision.ops.roi_align: input [N, C, H, W] (NCHW, or channels-last strides, which
// skip a layout copy), rois [K, 5] (batch index, x1, y1, x2, y2) of the input's dtype.
// Returns [K, C, pooled_height, pooled_width]. float16/bfloat16 compute in float32.
TVOPS_API Tensor roi_align(const Tensor& input, const Tensor& rois, double spatial_scale, int64_t pooled_height,
                           int64_t pooled_width, int64_t sampling_ratio, bool aligned, const Context& ctx = {});
// roi_align of a quint8 map: input holds the quantized values [N, C, H, W] (uint8),
// rois are float32. Returns uint8 [K, C, PH, PW] at the input's scale and zero point
// (torchvision's quantized roi_align; within one quantum of it, see kernels/cpu).
TVOPS_API Tensor roi_align_quint8(const Tensor& input, int64_t zero_point, const Tensor& rois, double spatial_scale,
                                  int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio, bool aligned,
                                  const Context& ctx = {});
// Gradient of roi_align with respect to its input: [batch, channels, height, width].
// CPU: always deterministic, the same sums in the same order as torchvision's CPU
// backward. CUDA: float atomics (like torchvision) unless `deterministic`, which sums in
// 64-bit fixed point instead: bit-identical from run to run. The other backward
// functions below take the same flag.
TVOPS_API Tensor roi_align_backward(const Tensor& grad, const Tensor& rois, double spatial_scale,
                                    int64_t pooled_height, int64_t pooled_width, int64_t batch, int64_t channels,
                                    int64_t height, int64_t width, int64_t sampling_ratio, bool aligned,
                                    bool deterministic = false, const Context& ctx = {});

// MultiScaleRoIAlign's pooling step in one call: RoI k is pooled from features[levels[k]]
// at scales[levels[k]] (feature maps [N, C, H_l, W_l] of one dtype). Returns
// [K, C, pooled_height, pooled_width], the same values as one roi_align per level; rows
// whose level is past the last map stay zero, as in torchvision's MultiScaleRoIAlign.
TVOPS_API Tensor multi_scale_roi_align(const std::vector<Tensor>& features, const std::vector<double>& scales,
                                       const Tensor& rois, const Tensor& levels, int64_t pooled_height,
                                       int64_t pooled_width, int64_t sampling_ratio, bool aligned,
                                       const Context& ctx = {});
// Its gradient: one tensor per level, shaped like that level's feature map.
TVOPS_API std::vector<Tensor> multi_scale_roi_align_backward(
    const Tensor& grad, const Tensor& rois, const Tensor& levels, const std::vector<double>& scales,
    const std::vector<std::vector<int64_t>>& feature_shapes, int64_t sampling_ratio, bool aligned,
    bool deterministic = false, const Context& ctx = {});

// torchvision.ops.roi_pool: max pooling over rounded integer bins. Returns (output
// [K, C, PH, PW], argmax int32 [K, C, PH, PW] = the flat pixel index in the plane, or -1).
TVOPS_API std::pair<Tensor, Tensor> roi_pool(const Tensor& input, const Tensor& rois, double spatial_scale,
                                             int64_t pooled_height, int64_t pooled_width, const Context& ctx = {});
TVOPS_API Tensor roi_pool_backward(const Tensor& grad, const Tensor& rois, const Tensor& argmax, double spatial_scale,
                                   int64_t pooled_height, int64_t pooled_width, int64_t batch, int64_t channels,
                                   int64_t height, int64_t width, bool deterministic = false,
                                   const Context& ctx = {});

// Position-sensitive RoI Align / RoI Pool (torchvision.ops.ps_roi_align / ps_roi_pool):
// input channels C = C_out * PH * PW. Returns (output [K, C_out, PH, PW], channel_mapping
// int32 of the same shape: the input channel each output read).
TVOPS_API std::pair<Tensor, Tensor> ps_roi_align(const Tensor& input, const Tensor& rois, double spatial_scale,
                                                 int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                                                 const Context& ctx = {});
TVOPS_API Tensor ps_roi_align_backward(const Tensor& grad, const Tensor& rois, const Tensor& channel_mapping,
                                       double spatial_scale, int64_t pooled_height, int64_t pooled_width,
                                       int64_t sampling_ratio, int64_t batch, int64_t channels, int64_t height,
                                       int64_t width, bool deterministic = false, const Context& ctx = {});
TVOPS_API std::pair<Tensor, Tensor> ps_roi_pool(const Tensor& input, const Tensor& rois, double spatial_scale,
                                                int64_t pooled_height, int64_t pooled_width, const Context& ctx = {});
TVOPS_API Tensor ps_roi_pool_backward(const Tensor& grad, const Tensor& rois, const Tensor& channel_mapping,
                                      double spatial_scale, int64_t pooled_height, int64_t pooled_width,
                                      int64_t batch, int64_t channels, int64_t height, int64_t width,
                                      bool deterministic = false, const Context& ctx = {});

// torchvision.ops.deform_conv2d (DCNv1; DCNv2 when use_mask), with torchvision's
// operator argument order. input [N, Cin, H, W], weight [Cout, Cin / groups, kh, kw],
// offset [N, 2 * offset_groups * kh * kw, Ho, Wo] ((dy, dx) per tap, y first), mask
// [N, offset_groups * kh * kw, Ho, Wo] (ignored unless use_mask; may be undefined then),
// bias [Cout] or undefined. One floating dtype (float16 / bfloat16 compute in float32).
// Returns [N, Cout, Ho, Wo]. allow_tf32: CUDA float32 may multiply on TF32 tensor cores
// (torch.backends.cudnn.allow_tf32, on by default in torch); the CPU ignores it.
TVOPS_API Tensor deform_conv2d(const Tensor& input, const Tensor& weight, const Tensor& offset, const Tensor& mask,
                               const Tensor& bias, int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                               int64_t dilation_h, int64_t dilation_w, int64_t groups, int64_t offset_groups,
                               bool use_mask, bool allow_tf32 = true, const Context& ctx = {});
// Its gradients: {grad_input, grad_weight, grad_offset, grad_mask, grad_bias}, shaped
// like input, weight, offset, mask (undefined without use_mask) and [Cout].
TVOPS_API std::vector<Tensor> deform_conv2d_backward(const Tensor& grad, const Tensor& input, const Tensor& weight,
                                                     const Tensor& offset, const Tensor& mask, const Tensor& bias,
                                                     int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                                                     int64_t dilation_h, int64_t dilation_w, int64_t groups,
                                                     int64_t offset_groups, bool use_mask, bool allow_tf32 = true,
                                                     const Context& ctx = {});

// deform_conv2d for inference in int8 (the CPU; u8 x s8 -> s32, on avx512vnni by
// vpdpbusd): weights quantized symmetrically per output channel, the sampled columns
// per call (scale max|input| * max|mask| / 127, zero point 128); float32 in and out.
// Accuracy against the float32 op: kernels/cpu/README.md.
TVOPS_API Tensor deform_conv2d_int8(const Tensor& input, const Tensor& weight, const Tensor& offset, const Tensor& mask,
                                    const Tensor& bias, int64_t stride_h, int64_t stride_w, int64_t pad_h,
                                    int64_t pad_w, int64_t dilation_h, int64_t dilation_w, int64_t groups,
                                    int64_t offset_groups, bool use_mask);

}  // namespace tvops
