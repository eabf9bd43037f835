"""deform_conv2d (torchvision.ops.deform_conv2d, DCNv1 and DCNv2) on tvops kernels.
Differentiable in every input for torch tensors; numpy arrays in give numpy arrays out."""
import math

from .. import _C
from .._convert import from_native, is_torch, stream_for, to_native
from .roi import _pair


def _allow_tf32():
    """CUDA float32 follows torch.backends.cudnn.allow_tf32, as torch's own convolutions."""
    import torch

    return bool(torch.backends.cudnn.allow_tf32)


class _Params:
    def __init__(self, weight_shape, offset_shape, stride, padding, dilation, in_channels):
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        kh, kw = int(weight_shape[-2]), int(weight_shape[-1])
        self.offset_groups = int(offset_shape[1]) // (2 * kh * kw)
        if self.offset_groups == 0:
            raise RuntimeError(
                "the shape of the offset tensor at dimension 1 is not valid. It should be a multiple of "
                f"2 * weight.size[2] * weight.size[3].\nGot offset.shape[1]={offset_shape[1]}, "
                f"while 2 * weight.size[2] * weight.size[3]={2 * kh * kw}")
        if int(weight_shape[1]) == 0:
            raise ValueError(f"deform_conv2d: weight.shape[1] must be positive, got weight of shape {tuple(weight_shape)}")
        self.groups = int(in_channels) // int(weight_shape[1])

    def args(self):
        return (*self.stride, *self.padding, *self.dilation, self.groups, self.offset_groups)


def _native(x, name):
    return None if x is None else to_native(x, name)


_function = None


def _autograd_function():
    global _function
    if _function is None:
        import torch

        class DeformConv2dFunction(torch.autograd.Function):
            @staticmethod
            def forward(ctx, input, offset, weight, bias, mask, params, allow_tf32):
                ctx.save_for_backward(input, offset, weight, bias, mask)
                ctx.params, ctx.allow_tf32 = params, allow_tf32
                out = _C.deform_conv2d(to_native(input, "input"), to_native(weight, "weight"),
                                       to_native(offset, "offset"), _native(mask, "mask"), _native(bias, "bias"),
                                       *params.args(), allow_tf32, stream_for(input))
                return from_native(out, input)

            @staticmethod
            @torch.autograd.function.once_differentiable
            def backward(ctx, grad):
                input, offset, weight, bias, mask = ctx.saved_tensors
                grads = _C.deform_conv2d_backward(
                    to_native(grad, "grad"), to_native(input, "input"), to_native(weight, "weight"),
                    to_native(offset, "offset"), _native(mask, "mask"), _native(bias, "bias"), *ctx.params.args(),
                    ctx.allow_tf32, stream_for(grad))
                g_input, g_weight, g_offset, g_mask, g_bias = (None if g is None else from_native(g, grad)
                                                               for g in grads)
                return (g_input, g_offset, g_weight, g_bias if bias is not None else None,
                        g_mask if mask is not None else None, None, None)

        _function = DeformConv2dFunction
    return _function


def deform_conv2d(input, offset, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), mask=None):
    """Deformable convolution, as torchvision.ops.deform_conv2d: input [N, Cin, H, W],
    offset [N, 2 * offset_groups * kh * kw, Ho, Wo], weight [Cout, Cin / groups, kh, kw],
    bias [Cout] or None, mask [N, offset_groups * kh * kw, Ho, Wo] or None (DCNv1).
    Returns [N, Cout, Ho, Wo]."""
    params = _Params(weight.shape, offset.shape, stride, padding, dilation, input.shape[1])
    if is_torch(input):
        import torch

        allow_tf32 = _allow_tf32() if input.is_cuda else True
        needs_grad = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (input, offset, weight, bias, mask))
        if needs_grad:
            return _autograd_function().apply(input, offset, weight, bias, mask, params, allow_tf32)
    else:
        allow_tf32 = True
    out = _C.deform_conv2d(to_native(input, "input"), to_native(weight, "weight"), to_native(offset, "offset"),
                           _native(mask, "mask"), _native(bias, "bias"), *params.args(), allow_tf32,
                           stream_for(input))
    return from_native(out, input)


def deform_conv2d_int8(input, offset, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), mask=None):
    """deform_conv2d for CPU inference in int8 (no autograd): the same arguments and
    float32 result as deform_conv2d, with weights quantized per output channel and the
    sampled columns per call, multiplied as u8 x s8 -> s32 (vpdpbusd on avx512vnni).
    Within about 1-3% of the float32 result (see kernels/cpu/README.md)."""
    params = _Params(weight.shape, offset.shape, stride, padding, dilation, input.shape[1])
    out = _C.deform_conv2d_int8(to_native(input, "input"), to_native(weight, "weight"), to_native(offset, "offset"),
                                _native(mask, "mask"), _native(bias, "bias"), *params.args())
    return from_native(out, input)


try:  # the module class needs torch
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - exercised by the torch-free import test
    nn = None

if nn is not None:

    class DeformConv2d(nn.Module):
        """torchvision.ops.DeformConv2d: same arguments, parameters, initialisation and state_dict keys."""

        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                     bias=True):
            super().__init__()
            if in_channels % groups != 0:
                raise ValueError("in_channels must be divisible by groups")
            if out_channels % groups != 0:
                raise ValueError("out_channels must be divisible by groups")
            self.in_channels, self.out_channels = in_channels, out_channels
            self.kernel_size = _pair(kernel_size)
            self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
            self.groups = groups
            self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
            if bias:
                self.bias = nn.Parameter(torch.empty(out_channels))
            else:
                self.register_parameter("bias", None)
            self.reset_parameters()

        def reset_parameters(self):
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
            if self.bias is not None:
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(self.weight)
                bound = 1 / math.sqrt(fan_in)
                nn.init.uniform_(self.bias, -bound, bound)

        def forward(self, input, offset, mask=None):
            return deform_conv2d(input, offset, self.weight, self.bias, stride=self.stride, padding=self.padding,
                                 dilation=self.dilation, mask=mask)

        def __repr__(self):
            s = (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                 f"stride={self.stride}")
            s += f", padding={self.padding}" if self.padding != (0, 0) else ""
            s += f", dilation={self.dilation}" if self.dilation != (1, 1) else ""
            s += f", groups={self.groups}" if self.groups != 1 else ""
            s += ", bias=False" if self.bias is None else ""
            return s + ")"
