"""Box operators (torchvision.ops.boxes)."""
from .. import _C
from .._convert import from_native, is_torch, stream_for, to_native


def nms(boxes, scores, iou_threshold):
    """Greedy non-maximum suppression, as torchvision.ops.nms.

    boxes: [N, 4] (x1, y1, x2, y2) and scores: [N], float tensors or arrays of the
    same dtype. Returns the int64 indices of the kept boxes in decreasing score
    order, as the same type (torch or numpy) and on the same device as `boxes`.
    """
    out = _C.nms(to_native(boxes, "boxes"), to_native(scores, "scores"), float(iou_threshold),
                 stream_for(boxes))
    return from_native(out, boxes)


# torchvision's batched_nms switches from the coordinate trick to per-class nms above
# this many coordinates on CUDA (the CPU kernel makes the same switch at 4000 itself).
_CUDA_PER_CLASS_NUMEL = 100_000


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS independently per category, as torchvision.ops.batched_nms.

    idxs: [N] category of each box. Returns int64 indices of the kept boxes in
    decreasing score order (ties in index order), same type and device as `boxes`.
    """
    if is_torch(boxes) and boxes.is_cuda:
        return _batched_nms_cuda(boxes, scores, idxs, float(iou_threshold))
    out = _C.batched_nms(to_native(boxes, "boxes"), to_native(scores, "scores"), to_native(idxs, "idxs"),
                         float(iou_threshold))
    return from_native(out, boxes)


def _batched_nms_cuda(boxes, scores, idxs, iou_threshold):
    # torchvision's CUDA strategies, with tvops' CUDA nms underneath.
    import torch

    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    if boxes.numel() <= _CUDA_PER_CLASS_NUMEL:
        offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
        return nms(boxes + offsets[:, None], scores, iou_threshold)
    keep_mask = torch.zeros_like(scores, dtype=torch.bool)
    for class_id in torch.unique(idxs):
        members = torch.where(idxs == class_id)[0]
        keep_mask[members[nms(boxes[members], scores[members], iou_threshold)]] = True
    keep = torch.where(keep_mask)[0]
    return keep[scores[keep].sort(descending=True, stable=True)[1]]
