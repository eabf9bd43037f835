"""MultiScaleRoIAlign (torchvision.ops.MultiScaleRoIAlign) with the per-level pooling
done in one native call over all FPN levels. Needs torch (it is an nn.Module)."""
import math

import torch
from torch import nn

from .. import _C
from .. import _torch as _custom
from .._convert import from_native, stream_for, to_native
from .boxes import box_area


def _area(boxes):
    # tvops' box kernels are CPU-only; on CUDA torchvision's formula in torch (half upcast to float32).
    if boxes.is_cuda:
        b = boxes.float() if boxes.dtype in (torch.float16, torch.bfloat16) else boxes
        return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return box_area(boxes)
from .roi import convert_boxes_to_roi_format


def _infer_scale(feature, original_size):
    # torchvision: 2 ** round(log2(feature_size / image_size)) from the height, in float32.
    approx = float(feature.shape[-2]) / float(original_size[0])
    return 2 ** float(torch.tensor(approx).log2().round())


class _LevelMapper:
    """torchvision's FPN level of each box: floor(k0 + log2(sqrt(area) / s0) + eps)."""

    def __init__(self, k_min, k_max, canonical_scale=224, canonical_level=4, eps=1e-6):
        self.k_min, self.k_max, self.s0, self.lvl0, self.eps = k_min, k_max, canonical_scale, canonical_level, eps

    def __call__(self, boxlists):
        s = torch.sqrt(torch.cat([_area(b) for b in boxlists]))
        levels = torch.floor(self.lvl0 + torch.log2(s / self.s0) + torch.tensor(self.eps, dtype=s.dtype))
        levels = torch.clamp(levels, min=self.k_min, max=self.k_max)
        return (levels.to(torch.int64) - self.k_min).to(torch.int64)


class _MultiScaleFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rois, levels, params, *features):
        scales, output_size, sampling_ratio = params
        out = _C.multi_scale_roi_align([to_native(f, "features") for f in features], list(scales),
                                       to_native(rois, "rois"), to_native(levels, "levels"), output_size[0],
                                       output_size[1], sampling_ratio, False, stream_for(rois))
        ctx.save_for_backward(rois, levels)
        ctx.params, ctx.shapes = params, [list(f.shape) for f in features]
        return from_native(out, features[0])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        rois, levels = ctx.saved_tensors
        scales, _, sampling_ratio = ctx.params
        grads = _C.multi_scale_roi_align_backward(to_native(grad, "grad"), to_native(rois, "rois"),
                                                  to_native(levels, "levels"), list(scales), ctx.shapes,
                                                  sampling_ratio, False, stream_for(grad),
                                                  grad.is_cuda and torch.are_deterministic_algorithms_enabled())
        return (None, None, None, *[from_native(g, grad) for g in grads])


class MultiScaleRoIAlign(nn.Module):
    """As torchvision.ops.MultiScaleRoIAlign: RoI Align over a feature pyramid, each box
    pooled from the level its size maps to."""

    __annotations__ = {"scales": list, "map_levels": _LevelMapper}

    def __init__(self, featmap_names, output_size, sampling_ratio, *, canonical_scale=224, canonical_level=4):
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.featmap_names = featmap_names
        self.sampling_ratio = sampling_ratio
        self.output_size = tuple(output_size)
        self.scales = None
        self.map_levels = None
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level

    def _setup_scales(self, features, image_shapes):
        if not image_shapes:
            raise ValueError("images list should not be empty")
        original = (max(s[0] for s in image_shapes), max(s[1] for s in image_shapes))
        self.scales = [_infer_scale(f, original) for f in features]
        lvl_min = -torch.log2(torch.tensor(self.scales[0], dtype=torch.float32)).item()
        lvl_max = -torch.log2(torch.tensor(self.scales[-1], dtype=torch.float32)).item()
        self.map_levels = _LevelMapper(int(lvl_min), int(lvl_max), self.canonical_scale, self.canonical_level)

    def forward(self, x, boxes, image_shapes):
        features = [v for k, v in x.items() if k in self.featmap_names]  # dict order, like torchvision
        if self.scales is None or self.map_levels is None:
            self._setup_scales(features, image_shapes)
        rois = convert_boxes_to_roi_format(boxes)
        if len(features) == 1:
            levels = torch.zeros(rois.shape[0], dtype=torch.int64, device=rois.device)
        else:
            levels = self.map_levels(boxes)
        if _custom.registered:
            return _custom.ops.multi_scale_roi_align(features, list(self.scales), rois, levels, self.output_size[0],
                                                     self.output_size[1], int(self.sampling_ratio), False)
        params = (tuple(self.scales), self.output_size, int(self.sampling_ratio))
        return _MultiScaleFunction.apply(rois, levels, params, *features)

    def __repr__(self):
        return (f"{self.__class__.__name__}(featmap_names={self.featmap_names}, "
                f"output_size={self.output_size}, sampling_ratio={self.sampling_ratio})")
