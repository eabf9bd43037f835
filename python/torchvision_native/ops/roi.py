"""RoI operators (torchvision.ops.roi_align, roi_pool, ps_roi_align, ps_roi_pool) on
tvops kernels. Differentiable with respect to the input for torch tensors; numpy
arrays in give numpy arrays out. torch tensors go through the tvops:: custom ops when
they are registered (torchvision_native._torch), else through _RoiOp's autograd.Function."""
import numpy as np

from .. import _C
from .. import _torch as _custom
from .._convert import from_native, is_torch, stream_for, to_native


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


def _torch_rois(boxes):
    import torch

    ids = [torch.full_like(b[:, :1], i) for i, b in enumerate(boxes)]
    return torch.cat([torch.cat(ids, 0), torch.cat(list(boxes), 0)], 1)


def convert_boxes_to_roi_format(boxes):
    """List of per-image [L, 4] boxes -> [K, 5] rois with the image index first."""
    if is_torch(boxes[0]):
        return _torch_rois(boxes)
    arrays = [np.asarray(b) for b in boxes]
    ids = [np.full((len(b), 1), i, dtype=b.dtype) for i, b in enumerate(arrays)]
    return np.concatenate([np.concatenate(ids, 0), np.concatenate(arrays, 0)], 1)


def _deterministic():
    """torch.use_deterministic_algorithms(True) picks the CUDA backward without float atomics."""
    import torch

    return torch.are_deterministic_algorithms_enabled()


class _RoiOp:
    """One RoI op: its native forward (returning the output, or (output, index)) and
    backward, wrapped in a torch.autograd.Function made on first use (torch is optional).
    CUDA tensors run on torch's current stream of their device."""

    def __init__(self, name, forward, backward):
        self.name, self.forward, self.backward = name, forward, backward
        self._function = None

    def function(self):
        if self._function is None:
            import torch

            op = self

            class Function(torch.autograd.Function):
                @staticmethod
                def forward(ctx, input, rois, params):
                    out, index = op.native_forward(input, rois, params)
                    ctx.save_for_backward(rois, *([index] if index is not None else []))
                    ctx.params, ctx.shape = params, tuple(input.shape)
                    return out

                @staticmethod
                @torch.autograd.function.once_differentiable
                def backward(ctx, grad):
                    rois, *index = ctx.saved_tensors
                    args = [to_native(grad, "grad"), to_native(rois, "rois")]
                    if index:
                        args.append(to_native(index[0], "index"))
                    grad_input = op.backward(*args, *ctx.params.backward_args(ctx.shape), stream_for(grad),
                                             grad.is_cuda and _deterministic())
                    return from_native(grad_input, grad), None, None

            Function.__name__ = f"{self.name}_function"
            self._function = Function
        return self._function

    def native_forward(self, input, rois, params):
        result = self.forward(to_native(input, "input"), to_native(rois, "rois"), *params.forward_args(),
                              stream_for(input))
        if isinstance(result, tuple):
            return from_native(result[0], input), from_native(result[1], input)
        return from_native(result, input), None

    def __call__(self, input, boxes, params):
        check_roi_boxes_shape(boxes)
        rois = boxes if not isinstance(boxes, (list, tuple)) else convert_boxes_to_roi_format(boxes)
        if is_torch(input):
            import torch

            if torch.is_grad_enabled() and input.requires_grad:
                return self.function().apply(input, rois, params)
        return self.native_forward(input, rois, params)[0]


class _Params:
    """The scalar arguments of one call, in the order the native functions take them."""

    def __init__(self, scale, size, sampling_ratio=None, aligned=None):
        self.scale, (self.ph, self.pw) = float(scale), _pair(size)
        self.sampling_ratio, self.aligned = sampling_ratio, aligned

    def _extra(self):
        return [] if self.sampling_ratio is None else [int(self.sampling_ratio)]

    def forward_args(self):
        args = [self.scale, self.ph, self.pw, *self._extra()]
        return args + ([bool(self.aligned)] if self.aligned is not None else [])

    def backward_args(self, shape):
        if self.aligned is not None:  # roi_align: sampling ratio after the sizes, like torchvision
            return [self.scale, self.ph, self.pw, *shape, int(self.sampling_ratio), bool(self.aligned)]
        return [self.scale, self.ph, self.pw, *self._extra(), *shape]


_roi_align = _RoiOp("roi_align", _C.roi_align, _C.roi_align_backward)
_roi_pool = _RoiOp("roi_pool", _C.roi_pool, _C.roi_pool_backward)
_ps_roi_align = _RoiOp("ps_roi_align", _C.ps_roi_align, _C.ps_roi_align_backward)
_ps_roi_pool = _RoiOp("ps_roi_pool", _C.ps_roi_pool, _C.ps_roi_pool_backward)


def _custom_rois(boxes):
    """The [K, 5] rois of a custom-op call (torchvision's box checks first)."""
    check_roi_boxes_shape(boxes)
    return _torch_rois(boxes) if isinstance(boxes, (list, tuple)) else boxes


def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoI Align, as torchvision.ops.roi_align: [K, C, *output_size] features of `input`
    [N, C, H, W] bilinearly pooled over `boxes` (Tensor[K, 5] or a list of Tensor[L, 4]).
    Quantized inputs (one image, as torchvision allows) give a result quantized like the input."""
    if _custom.wants(input) and not input.is_quantized:
        ph, pw = _pair(output_size)
        return _custom.ops.roi_align(input, _custom_rois(boxes), float(spatial_scale), ph, pw, int(sampling_ratio),
                                     bool(aligned))
    if is_torch(input) and input.is_quantized:
        return _quantized_roi_align(input, boxes, output_size, spatial_scale, sampling_ratio, aligned)
    return _roi_align(input, boxes, _Params(spatial_scale, output_size, sampling_ratio, aligned))


def _quantized_roi_align(input, boxes, output_size, spatial_scale, sampling_ratio, aligned):
    import torch

    check_roi_boxes_shape(boxes)
    rois = boxes if not isinstance(boxes, (list, tuple)) else convert_boxes_to_roi_format(boxes)
    if input.shape[0] != 1:
        raise RuntimeError("Only one image per batch is allowed in roi_align when quantized tensors are passed as input")
    rois = rois.dequantize() if rois.is_quantized else rois
    if input.dtype == torch.quint8:  # integer kernel (vpdpbusd on avx512vnni)
        ph, pw = _pair(output_size)
        values = input.int_repr()
        out = _C.roi_align_quint8(to_native(values, "input"), int(input.q_zero_point()),
                                  to_native(rois.float(), "rois"), float(spatial_scale), ph, pw,
                                  int(sampling_ratio), bool(aligned))
        return torch._make_per_tensor_quantized_tensor(from_native(out, values), input.q_scale(),
                                                       input.q_zero_point())
    out = _roi_align(input.dequantize(), rois, _Params(spatial_scale, output_size, sampling_ratio, aligned))
    return torch.quantize_per_tensor(out, input.q_scale(), input.q_zero_point(), input.dtype)


def roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """RoI max pooling, as torchvision.ops.roi_pool."""
    if _custom.wants(input):
        ph, pw = _pair(output_size)
        return _custom.ops.roi_pool(input, _custom_rois(boxes), float(spatial_scale), ph, pw)[0]
    return _roi_pool(input, boxes, _Params(spatial_scale, output_size))


def ps_roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1):
    """Position-sensitive RoI Align, as torchvision.ops.ps_roi_align (C = C_out * PH * PW)."""
    if _custom.wants(input):
        ph, pw = _pair(output_size)
        return _custom.ops.ps_roi_align(input, _custom_rois(boxes), float(spatial_scale), ph, pw,
                                        int(sampling_ratio))[0]
    return _ps_roi_align(input, boxes, _Params(spatial_scale, output_size, sampling_ratio))


def ps_roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """Position-sensitive RoI average pooling, as torchvision.ops.ps_roi_pool."""
    if _custom.wants(input):
        ph, pw = _pair(output_size)
        return _custom.ops.ps_roi_pool(input, _custom_rois(boxes), float(spatial_scale), ph, pw)[0]
    return _ps_roi_pool(input, boxes, _Params(spatial_scale, output_size))
