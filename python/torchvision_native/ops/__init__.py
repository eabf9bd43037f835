"""torchvision.ops on tvops kernels: same names, arguments and results."""
from .boxes import (
    batched_nms,
    box_area,
    box_convert,
    box_iou,
    clip_boxes_to_image,
    complete_box_iou,
    distance_box_iou,
    generalized_box_iou,
    nms,
    remove_small_boxes,
)
from .deform_conv import deform_conv2d, deform_conv2d_int8
from .roi import ps_roi_align, ps_roi_pool, roi_align, roi_pool

try:  # the module classes need torch
    from .deform_conv import DeformConv2d
    from .poolers import MultiScaleRoIAlign
except ImportError:  # pragma: no cover - exercised by the torch-free import test
    pass

__all__ = [
    "DeformConv2d", "MultiScaleRoIAlign",
    "batched_nms", "box_area", "box_convert", "box_iou", "clip_boxes_to_image", "complete_box_iou", "deform_conv2d", "deform_conv2d_int8",
    "distance_box_iou", "generalized_box_iou", "nms", "ps_roi_align", "ps_roi_pool", "remove_small_boxes", "roi_align", "roi_pool",
]
