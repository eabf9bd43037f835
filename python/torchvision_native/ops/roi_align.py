"""RoI Align (torchvision.ops.roi_align) on tvops kernels, differentiable with torch."""
import numpy as np

from .. import _C
from .._convert import from_native, is_torch, to_native


def _pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def check_roi_boxes_shape(boxes):
    """torchvision's check: Tensor[K, 5] or a list of Tensor[L, 4] (AssertionError otherwise)."""
    if isinstance(boxes, (list, tuple)):
        for t in boxes:
            assert t.shape[1] == 4, "The shape of the tensor in the boxes list is not correct as List[Tensor[L, 4]]"
    elif hasattr(boxes, "shape"):
        assert len(boxes.shape) == 2 and boxes.shape[1] == 5, "The boxes tensor shape is not correct as Tensor[K, 5]"
    else:
        raise AssertionError("boxes is expected to be a Tensor[L, 5] or a List[Tensor[K, 4]]")


def convert_boxes_to_roi_format(boxes):
    """List of per-image [L, 4] boxes -> [K, 5] rois with the image index first."""
    if is_torch(boxes[0]):
        import torch

        ids = [torch.full_like(b[:, :1], i) for i, b in enumerate(boxes)]
        return torch.cat([torch.cat(ids, 0), torch.cat(list(boxes), 0)], 1)
    arrays = [np.asarray(b) for b in boxes]
    ids = [np.full((len(b), 1), i, dtype=b.dtype) for i, b in enumerate(arrays)]
    return np.concatenate([np.concatenate(ids, 0), np.concatenate(arrays, 0)], 1)


def _forward(input, rois, spatial_scale, output_size, sampling_ratio, aligned):
    ph, pw = output_size
    out = _C.roi_align(to_native(input, "input"), to_native(rois, "rois"), float(spatial_scale), ph, pw,
                       int(sampling_ratio), bool(aligned))
    return from_native(out, input)


def _backward(grad, rois, spatial_scale, output_size, input_shape, sampling_ratio, aligned):
    ph, pw = output_size
    n, c, h, w = input_shape
    out = _C.roi_align_backward(to_native(grad, "grad"), to_native(rois, "rois"), float(spatial_scale), ph, pw,
                                n, c, h, w, int(sampling_ratio), bool(aligned))
    return from_native(out, grad)


_Function = None


def _autograd_function():
    """torch.autograd.Function over the tvops kernels, made on first use (torch is optional)."""
    global _Function
    if _Function is None:
        import torch

        class RoIAlignFunction(torch.autograd.Function):
            @staticmethod
            def forward(ctx, input, rois, spatial_scale, output_size, sampling_ratio, aligned):
                ctx.save_for_backward(rois)
                ctx.args = (spatial_scale, output_size, tuple(input.shape), sampling_ratio, aligned)
                return _forward(input, rois, spatial_scale, output_size, sampling_ratio, aligned)

            @staticmethod
            @torch.autograd.function.once_differentiable
            def backward(ctx, grad):
                (rois,) = ctx.saved_tensors
                spatial_scale, output_size, shape, sampling_ratio, aligned = ctx.args
                grad_input = _backward(grad, rois, spatial_scale, output_size, shape, sampling_ratio, aligned)
                return grad_input, None, None, None, None, None

        _Function = RoIAlignFunction
    return _Function


def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoI Align, as torchvision.ops.roi_align: [K, C, output_size] features of `input`
    [N, C, H, W] pooled over `boxes` (Tensor[K, 5] or a list of per-image Tensor[L, 4]).
    Differentiable with respect to `input` for torch tensors."""
    check_roi_boxes_shape(boxes)
    rois = boxes if not isinstance(boxes, (list, tuple)) else convert_boxes_to_roi_format(boxes)
    output_size = _pair(output_size)
    if is_torch(input):
        import torch

        if input.is_cuda:
            raise NotImplementedError("roi_align: tvops has no CUDA roi_align kernel in this build yet")
        if torch.is_grad_enabled() and input.requires_grad:
            return _autograd_function().apply(input, rois, spatial_scale, output_size, sampling_ratio, aligned)
    return _forward(input, rois, spatial_scale, output_size, sampling_ratio, aligned)
