"""Box operators (torchvision.ops.boxes). torch tensors go through the tvops:: custom
ops when they are registered (torchvision_native._torch), anything else straight to
the native functions."""
from .. import _C
from .. import _torch as _custom
from .._convert import from_native, is_torch, stream_for, to_native


def nms(boxes, scores, iou_threshold):
    """Greedy non-maximum suppression, as torchvision.ops.nms.

    boxes: [N, 4] (x1, y1, x2, y2) and scores: [N], float tensors or arrays of the
    same dtype. Returns the int64 indices of the kept boxes in decreasing score
    order, as the same type (torch or numpy) and on the same device as `boxes`.
    """
    if is_torch(boxes) and (boxes.is_quantized or scores.is_quantized):
        # torchvision's quantized nms works on the integer representations (scale and
        # zero point cancel in the IoU ratio and keep the score order): the same in float.
        boxes = boxes.int_repr().float() if boxes.is_quantized else boxes
        scores = scores.int_repr().float() if scores.is_quantized else scores
    if _custom.wants(boxes):
        return _custom.ops.nms(boxes, scores, float(iou_threshold))
    out = _C.nms(to_native(boxes, "boxes"), to_native(scores, "scores"), float(iou_threshold),
                 stream_for(boxes))
    return from_native(out, boxes)


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS independently per category, as torchvision.ops.batched_nms.

    idxs: [N] category of each box. Returns int64 indices of the kept boxes in
    decreasing score order (ties in index order), same type and device as `boxes`.
    On CUDA everything runs on the device (torchvision's strategies: the coordinate
    trick up to 100k coordinates, per-category nms above).
    """
    if _custom.wants(boxes):
        return _custom.ops.batched_nms(boxes, scores, idxs, float(iou_threshold))
    out = _C.batched_nms(to_native(boxes, "boxes"), to_native(scores, "scores"), to_native(idxs, "idxs"),
                         float(iou_threshold), stream_for(boxes))
    return from_native(out, boxes)


_AXIS_ALIGNED = ("xyxy", "xywh", "cxcywh")
_ROTATED = ("xywhr", "cxcywhr", "xyxyxyxy")
_IOU, _GIOU, _DIOU, _CIOU = 0, 1, 2, 3


def _check_no_grad(op, *tensors):
    # These ops are not differentiable yet: refuse rather than silently drop gradients.
    for t in tensors:
        if getattr(t, "requires_grad", False):  # torch tensors only; numpy has no such attribute
            import torch

            if torch.is_grad_enabled():
                raise NotImplementedError(
                    f"{op}: autograd through tvops box ops is not available yet; use torchvision.ops.{op} "
                    "where gradients are needed, or call under torch.no_grad()")


def box_convert(boxes, in_fmt, out_fmt):
    """Converts boxes between 'xyxy', 'xywh' and 'cxcywh', as torchvision.ops.box_convert."""
    allowed = _AXIS_ALIGNED + _ROTATED
    if in_fmt not in allowed or out_fmt not in allowed:
        raise ValueError(f"Unsupported Bounding Box Conversions for given in_fmt {in_fmt} and out_fmt {out_fmt}")
    if in_fmt in _ROTATED or out_fmt in _ROTATED:
        raise NotImplementedError(f"box_convert: rotated formats ({in_fmt} -> {out_fmt}) are not supported by tvops yet")
    _check_no_grad("box_convert", boxes)
    if _custom.wants(boxes):
        return _custom.ops.box_convert(boxes, in_fmt, out_fmt)
    return from_native(_C.box_convert(to_native(boxes, "boxes"), in_fmt, out_fmt, stream_for(boxes)), boxes)


def box_area(boxes, fmt="xyxy"):
    """Areas of [..., 4] boxes, as torchvision.ops.box_area."""
    if fmt not in _AXIS_ALIGNED:
        raise ValueError(f"Unsupported Bounding Box area for given format {fmt}")
    _check_no_grad("box_area", boxes)
    if _custom.wants(boxes):
        return _custom.ops.box_area(boxes, fmt)
    return from_native(_C.box_area(to_native(boxes, "boxes"), fmt, stream_for(boxes)), boxes)


def clip_boxes_to_image(boxes, size):
    """Clips [..., 4] xyxy boxes to an image of size (height, width)."""
    height, width = size
    _check_no_grad("clip_boxes_to_image", boxes)
    if _custom.wants(boxes):
        return _custom.ops.clip_boxes_to_image(boxes, int(height), int(width))
    return from_native(_C.clip_boxes_to_image(to_native(boxes, "boxes"), int(height), int(width),
                                                           stream_for(boxes)), boxes)


def remove_small_boxes(boxes, min_size):
    """int64 indices of the boxes whose sides are both >= min_size."""
    if _custom.wants(boxes):
        return _custom.ops.remove_small_boxes(boxes, float(min_size))
    return from_native(_C.remove_small_boxes(to_native(boxes, "boxes"), float(min_size), stream_for(boxes)), boxes)


def _pairwise(op, boxes1, boxes2, kind, eps=1e-7, fmt="xyxy"):
    if fmt in _ROTATED:
        raise NotImplementedError(f"{op}: rotated formats are not supported by tvops yet")
    if fmt not in _AXIS_ALIGNED:
        raise ValueError(f"Unsupported format '{fmt}'. Supported axis-aligned formats: {_AXIS_ALIGNED}.")
    _check_no_grad(op, boxes1, boxes2)
    if _custom.wants(boxes1):
        if fmt != "xyxy":
            boxes1, boxes2 = (_custom.ops.box_convert(t, fmt, "xyxy") for t in (boxes1, boxes2))
        fn = getattr(_custom.ops, op)
        return fn(boxes1, boxes2) if kind in (_IOU, _GIOU) else fn(boxes1, boxes2, float(eps))
    a, b = to_native(boxes1, "boxes1"), to_native(boxes2, "boxes2")
    if fmt != "xyxy":
        a, b = (_C.box_convert(t, fmt, "xyxy", stream_for(boxes1)) for t in (a, b))
    return from_native(_C.pairwise_box_iou(a, b, kind, float(eps), stream_for(boxes1)), boxes1)


def box_iou(boxes1, boxes2, fmt="xyxy"):
    """[..., N, M] IoU of boxes1 [..., N, 4] and boxes2 [..., M, 4], as torchvision.ops.box_iou."""
    return _pairwise("box_iou", boxes1, boxes2, _IOU, fmt=fmt)


def generalized_box_iou(boxes1, boxes2):
    """[..., N, M] generalized IoU of xyxy boxes."""
    return _pairwise("generalized_box_iou", boxes1, boxes2, _GIOU)


def distance_box_iou(boxes1, boxes2, eps=1e-7):
    """[..., N, M] distance IoU of xyxy boxes."""
    return _pairwise("distance_box_iou", boxes1, boxes2, _DIOU, eps)


def complete_box_iou(boxes1, boxes2, eps=1e-7):
    """[..., N, M] complete IoU of xyxy boxes."""
    return _pairwise("complete_box_iou", boxes1, boxes2, _CIOU, eps)
