"""Box operators (torchvision.ops.boxes)."""
from .. import _C
from .._convert import from_native, stream_for, to_native


def nms(boxes, scores, iou_threshold):
    """Greedy non-maximum suppression, as torchvision.ops.nms.

    boxes: [N, 4] (x1, y1, x2, y2) and scores: [N], float tensors or arrays of the
    same dtype. Returns the int64 indices of the kept boxes in decreasing score
    order, as the same type (torch or numpy) and on the same device as `boxes`.
    """
    out = _C.nms(to_native(boxes, "boxes"), to_native(scores, "scores"), float(iou_threshold),
                 stream_for(boxes))
    return from_native(out, boxes)
