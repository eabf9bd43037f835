"""Fake (meta) kernels of the tvops:: custom ops: output shapes and dtypes without data,
for torch.compile, torch.export and FakeTensor tracing. They check what the shapes
alone can tell, with torchvision's messages where torchvision has the op; the native
kernels check the rest when the program runs. Outputs whose length depends on the data
(nms, batched_nms, remove_small_boxes) get an unbacked size."""
import torch

_HALF = (torch.float16, torch.bfloat16)
_SMALL_INT = (torch.bool, torch.uint8, torch.int8, torch.int16)


def _check_same_dtype(a, b, a_name, b_name):
    torch._check(a.dtype == b.dtype, lambda: (
        f"Expected tensor for {a_name} to have the same type as tensor for {b_name}; "
        f"but type {a.dtype} does not equal {b.dtype}"))


def _dynamic_indices(like):
    n = torch.library.get_ctx().new_dynamic_size()
    return like.new_empty((n,), dtype=torch.int64)


# ---- boxes ----

def _check_nms(dets, scores):
    torch._check(dets.dim() == 2, lambda: f"boxes should be a 2d tensor, got {dets.dim()}D")
    torch._check(dets.size(1) == 4, lambda: f"boxes should have 4 elements in dimension 1, got {dets.size(1)}")
    torch._check(scores.dim() == 1, lambda: f"scores should be a 1d tensor, got {scores.dim()}D")
    torch._check(dets.size(0) == scores.size(0), lambda: (
        "boxes and scores should have same number of elements in dimension 0, "
        f"got {dets.size(0)} and {scores.size(0)}"))


def nms(dets, scores, iou_threshold):
    _check_nms(dets, scores)
    return _dynamic_indices(dets)


def batched_nms(boxes, scores, idxs, iou_threshold):
    _check_nms(boxes, scores)
    torch._check(idxs.dim() == 1 and idxs.size(0) == boxes.size(0),
                 lambda: f"idxs should be [N] with N = {boxes.size(0)}, got {tuple(idxs.shape)}")
    return _dynamic_indices(boxes)


def _check_boxes(boxes):
    torch._check(boxes.dim() >= 1 and boxes.size(-1) == 4,
                 lambda: f"boxes should be [..., 4], got {tuple(boxes.shape)}")
    torch._check(boxes.dtype != torch.bool, lambda: "boxes must be a numeric tensor, got bool")


def box_convert(boxes, in_fmt, out_fmt):
    _check_boxes(boxes)
    integer = not boxes.dtype.is_floating_point
    through_centre = "cxcywh" in (in_fmt, out_fmt) and in_fmt != out_fmt
    return boxes.new_empty(boxes.shape, dtype=torch.float32 if integer and through_centre else boxes.dtype)


def box_area(boxes, fmt="xyxy"):
    _check_boxes(boxes)
    dtype = torch.float32 if boxes.dtype in _HALF else torch.int32 if boxes.dtype in _SMALL_INT else boxes.dtype
    return boxes.new_empty(boxes.shape[:-1], dtype=dtype)


def clip_boxes_to_image(boxes, height, width):
    _check_boxes(boxes)
    return torch.empty_like(boxes, memory_format=torch.contiguous_format)


def remove_small_boxes(boxes, min_size):
    _check_boxes(boxes)
    torch._check(boxes.dim() == 2, lambda: f"boxes should be [N, 4], got {tuple(boxes.shape)}")
    return _dynamic_indices(boxes)


def _pairwise(boxes1, boxes2, eps=1e-7):
    _check_boxes(boxes1)
    _check_boxes(boxes2)
    torch._check(boxes1.dim() >= 2 and boxes1.dim() == boxes2.dim() and boxes1.shape[:-2] == boxes2.shape[:-2],
                 lambda: ("boxes1 and boxes2 should be [..., N, 4] and [..., M, 4] with the same leading dims, "
                          f"got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}"))
    both_double = boxes1.dtype == torch.float64 and boxes2.dtype == torch.float64
    shape = (*boxes1.shape[:-1], boxes2.size(-2))
    return boxes1.new_empty(shape, dtype=torch.float64 if both_double else torch.float32)


box_iou = generalized_box_iou = distance_box_iou = complete_box_iou = _pairwise


# ---- RoI family ----

def _check_rois(input, rois):
    torch._check(rois.dim() == 2 and rois.size(1) == 5, lambda: "rois must have shape as Tensor[K, 5]")
    _check_same_dtype(input, rois, "input", "rois")


def roi_align(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned):
    _check_rois(input, rois)
    return input.new_empty((rois.size(0), input.size(1), pooled_height, pooled_width))


def _roi_align_backward(grad, rois, spatial_scale, pooled_height, pooled_width, batch_size, channels, height, width,
                        sampling_ratio, aligned):
    _check_same_dtype(grad, rois, "grad", "rois")
    return grad.new_empty((batch_size, channels, height, width))


def roi_pool(input, rois, spatial_scale, pooled_height, pooled_width):
    _check_rois(input, rois)
    shape = (rois.size(0), input.size(1), pooled_height, pooled_width)
    return input.new_empty(shape), input.new_empty(shape, dtype=torch.int32)


def _roi_pool_backward(grad, rois, argmax, spatial_scale, pooled_height, pooled_width, batch_size, channels, height,
                       width):
    _check_same_dtype(grad, rois, "grad", "rois")
    return grad.new_empty((batch_size, channels, height, width))


def _position_sensitive(input, rois, pooled_height, pooled_width):
    _check_rois(input, rois)
    channels = input.size(1)
    torch._check(channels % (pooled_height * pooled_width) == 0,
                 lambda: "input channels must be a multiple of pooling height * pooling width")
    shape = (rois.size(0), channels // (pooled_height * pooled_width), pooled_height, pooled_width)
    return input.new_empty(shape), input.new_empty(shape, dtype=torch.int32)


def ps_roi_align(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio):
    return _position_sensitive(input, rois, pooled_height, pooled_width)


def _ps_roi_align_backward(grad, rois, channel_mapping, spatial_scale, pooled_height, pooled_width, sampling_ratio,
                           batch_size, channels, height, width):
    _check_same_dtype(grad, rois, "grad", "rois")
    return grad.new_empty((batch_size, channels, height, width))


def ps_roi_pool(input, rois, spatial_scale, pooled_height, pooled_width):
    return _position_sensitive(input, rois, pooled_height, pooled_width)


def _ps_roi_pool_backward(grad, rois, channel_mapping, spatial_scale, pooled_height, pooled_width, batch_size,
                          channels, height, width):
    _check_same_dtype(grad, rois, "grad", "rois")
    return grad.new_empty((batch_size, channels, height, width))


def multi_scale_roi_align(features, scales, rois, levels, pooled_height, pooled_width, sampling_ratio, aligned):
    torch._check(len(features) > 0 and len(features) == len(scales),
                 lambda: f"one scale per feature map: {len(features)} maps, {len(scales)} scales")
    _check_rois(features[0], rois)
    torch._check(levels.dim() == 1 and levels.size(0) == rois.size(0),
                 lambda: f"levels should be [K] with K = {rois.size(0)}, got {tuple(levels.shape)}")
    return features[0].new_empty((rois.size(0), features[0].size(1), pooled_height, pooled_width))


def _multi_scale_roi_align_backward(grad, rois, levels, scales, shapes, sampling_ratio, aligned):
    torch._check(len(shapes) == 4 * len(scales), lambda: "shapes holds [N, C, H, W] of each level")
    return [grad.new_empty(tuple(shapes[i:i + 4])) for i in range(0, len(shapes), 4)]


def deform_conv2d(input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups,
                  offset_groups, use_mask):
    torch._check(input.dim() == 4 and weight.dim() == 4 and offset.dim() == 4,
                 lambda: "deform_conv2d: input, weight and offset should be 4-d")
    torch._check(offset.size(1) == 2 * offset_groups * weight.size(2) * weight.size(3), lambda: (
        f"deform_conv2d: offset has {offset.size(1)} channels, expected 2 * offset_groups * kh * kw = "
        f"{2 * offset_groups * weight.size(2) * weight.size(3)}"))
    return input.new_empty((input.size(0), weight.size(0), offset.size(2), offset.size(3)))


def _deform_conv2d_backward(grad, input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w, dilation_h,
                            dilation_w, groups, offset_groups, use_mask):
    return (torch.empty_like(input, memory_format=torch.contiguous_format),
            torch.empty_like(weight, memory_format=torch.contiguous_format),
            torch.empty_like(offset, memory_format=torch.contiguous_format),
            torch.empty_like(mask, memory_format=torch.contiguous_format),
            torch.empty_like(bias, memory_format=torch.contiguous_format))
