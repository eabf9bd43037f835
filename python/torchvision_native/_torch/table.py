"""The tvops:: custom ops: one schema per op. Ops torchvision has keep its name,
schema and argument order (so torchvision's operators can be served by the same
kernels, see patch.py); the others follow torchvision_native.ops.

Adding an op means one line here, its kernel in kernels.py, its fake kernel in
fake.py and, if it is differentiable, its formula in autograd.py.
"""

SCHEMAS = {
    # boxes
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "batched_nms": "batched_nms(Tensor boxes, Tensor scores, Tensor idxs, float iou_threshold) -> Tensor",
    "box_convert": "box_convert(Tensor boxes, str in_fmt, str out_fmt) -> Tensor",
    "box_area": "box_area(Tensor boxes, str fmt=\"xyxy\") -> Tensor",
    "clip_boxes_to_image": "clip_boxes_to_image(Tensor boxes, SymInt height, SymInt width) -> Tensor",
    "remove_small_boxes": "remove_small_boxes(Tensor boxes, float min_size) -> Tensor",
    "box_iou": "box_iou(Tensor boxes1, Tensor boxes2) -> Tensor",
    "generalized_box_iou": "generalized_box_iou(Tensor boxes1, Tensor boxes2) -> Tensor",
    "distance_box_iou": "distance_box_iou(Tensor boxes1, Tensor boxes2, float eps=1e-07) -> Tensor",
    "complete_box_iou": "complete_box_iou(Tensor boxes1, Tensor boxes2, float eps=1e-07) -> Tensor",
    # RoI family (torchvision's schemas)
    "roi_align": "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
                 "SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor",
    "_roi_align_backward": "_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height, "
                           "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width, "
                           "int sampling_ratio, bool aligned) -> Tensor",
    "roi_pool": "roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
                "SymInt pooled_width) -> (Tensor, Tensor)",
    "_roi_pool_backward": "_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, float spatial_scale, "
                          "SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, "
                          "SymInt height, SymInt width) -> Tensor",
    "ps_roi_align": "ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
                    "SymInt pooled_width, int sampling_ratio) -> (Tensor, Tensor)",
    "_ps_roi_align_backward": "_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor channel_mapping, "
                              "float spatial_scale, SymInt pooled_height, SymInt pooled_width, int sampling_ratio, "
                              "SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor",
    "ps_roi_pool": "ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
                   "SymInt pooled_width) -> (Tensor, Tensor)",
    "_ps_roi_pool_backward": "_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor channel_mapping, "
                             "float spatial_scale, SymInt pooled_height, SymInt pooled_width, SymInt batch_size, "
                             "SymInt channels, SymInt height, SymInt width) -> Tensor",
    # deformable convolution (torchvision's schemas: mask is read only when use_mask)
    "deform_conv2d": "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, "
                     "SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, "
                     "SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) -> Tensor",
    "_deform_conv2d_backward": "_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, "
                               "Tensor mask, Tensor bias, SymInt stride_h, SymInt stride_w, SymInt pad_h, "
                               "SymInt pad_w, SymInt dilation_h, SymInt dilation_w, SymInt groups, "
                               "SymInt offset_groups, bool use_mask) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
    # MultiScaleRoIAlign's pooling over every level in one call; shapes = [N, C, H, W] of each level, flattened
    "multi_scale_roi_align": "multi_scale_roi_align(Tensor[] features, float[] scales, Tensor rois, Tensor levels, "
                             "SymInt pooled_height, SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor",
    "_multi_scale_roi_align_backward": "_multi_scale_roi_align_backward(Tensor grad, Tensor rois, Tensor levels, "
                                      "float[] scales, SymInt[] shapes, int sampling_ratio, bool aligned) -> Tensor[]",
}

# Backward op -> the forward op it differentiates (a second derivative raises).
BACKWARD_OF = {name: name[1:-len("_backward")] for name in SCHEMAS if name.endswith("_backward")}
