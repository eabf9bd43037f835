"""Autograd formulas of the differentiable tvops:: ops: (setup_context, backward) pairs
for torch.library.register_autograd (and eager.py's autograd.Functions). The backward
passes call the backward custom ops, so compiled and exported graphs see them as ops
too (plain eager backward passes call their kernels: eager.call_backward). As in
torchvision, the RoI ops give gradients to the feature maps only (never to the boxes),
deform_conv2d to all five tensors, and the backward ops themselves refuse a second
derivative."""
from .eager import call_backward


def _save_roi(ctx, inputs, output, index=None):
    input, rois, spatial_scale, pooled_height, pooled_width, *rest = inputs
    ctx.save_for_backward(rois, *([] if index is None else [index]))
    ctx.input_shape = tuple(input.shape)
    ctx.scalars = (spatial_scale, pooled_height, pooled_width)
    ctx.rest = tuple(rest)  # sampling_ratio [, aligned]
    if index is not None:
        ctx.mark_non_differentiable(index)
        # Otherwise autograd hands backward a zero tensor for the index output (100 MB
        # of int32 at PERF.md's rp7, ~40 ms of fresh pages per backward on the CPU).
        ctx.set_materialize_grads(False)


def _no_grads(n):
    return (None,) * n


# roi_align(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)
def _roi_align_setup(ctx, inputs, output):
    _save_roi(ctx, inputs, output)


def _roi_align_backward(ctx, grad):
    (rois,) = ctx.saved_tensors
    sampling_ratio, aligned = ctx.rest
    grad_input = call_backward("_roi_align_backward", grad, rois, *ctx.scalars, *ctx.input_shape, sampling_ratio,
                               aligned)
    return (grad_input,) + _no_grads(6)


# roi_pool(input, rois, spatial_scale, pooled_height, pooled_width) -> (output, argmax)
def _roi_pool_setup(ctx, inputs, output):
    _save_roi(ctx, inputs, output, index=output[1])


def _roi_pool_backward(ctx, grad, _grad_argmax):
    if grad is None:  # the pooled output took no part in the loss
        return _no_grads(5)
    rois, argmax = ctx.saved_tensors
    grad_input = call_backward("_roi_pool_backward", grad, rois, argmax, *ctx.scalars, *ctx.input_shape)
    return (grad_input,) + _no_grads(4)


# ps_roi_align(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio) -> (output, mapping)
def _ps_roi_align_setup(ctx, inputs, output):
    _save_roi(ctx, inputs, output, index=output[1])


def _ps_roi_align_backward(ctx, grad, _grad_mapping):
    if grad is None:  # the pooled output took no part in the loss
        return _no_grads(6)
    rois, mapping = ctx.saved_tensors
    (sampling_ratio,) = ctx.rest
    grad_input = call_backward("_ps_roi_align_backward", grad, rois, mapping, *ctx.scalars, sampling_ratio,
                               *ctx.input_shape)
    return (grad_input,) + _no_grads(5)


# ps_roi_pool(input, rois, spatial_scale, pooled_height, pooled_width) -> (output, mapping)
def _ps_roi_pool_setup(ctx, inputs, output):
    _save_roi(ctx, inputs, output, index=output[1])


def _ps_roi_pool_backward(ctx, grad, _grad_mapping):
    if grad is None:  # the pooled output took no part in the loss
        return _no_grads(5)
    rois, mapping = ctx.saved_tensors
    grad_input = call_backward("_ps_roi_pool_backward", grad, rois, mapping, *ctx.scalars, *ctx.input_shape)
    return (grad_input,) + _no_grads(4)


# multi_scale_roi_align(features, scales, rois, levels, pooled_height, pooled_width, sampling_ratio, aligned)
def _multi_scale_setup(ctx, inputs, output):
    features, scales, rois, levels, _ph, _pw, sampling_ratio, aligned = inputs
    ctx.save_for_backward(rois, levels)
    ctx.shapes = [s for f in features for s in f.shape]
    ctx.scales, ctx.sampling_ratio, ctx.aligned = list(scales), sampling_ratio, aligned


def _multi_scale_backward(ctx, grad):
    rois, levels = ctx.saved_tensors
    grads = call_backward("_multi_scale_roi_align_backward", grad, rois, levels, ctx.scales, ctx.shapes,
                          ctx.sampling_ratio, ctx.aligned)
    return (list(grads),) + _no_grads(7)


# deform_conv2d(input, weight, offset, mask, bias, stride_h, ..., offset_groups, use_mask)
def _deform_conv2d_setup(ctx, inputs, output):
    input, weight, offset, mask, bias, *scalars = inputs
    ctx.save_for_backward(input, weight, offset, mask, bias)
    ctx.scalars = tuple(scalars)


def _deform_conv2d_backward(ctx, grad):
    input, weight, offset, mask, bias = ctx.saved_tensors
    g_input, g_weight, g_offset, g_mask, g_bias = call_backward("_deform_conv2d_backward", grad, input, weight,
                                                                offset, mask, bias, *ctx.scalars)
    use_mask = ctx.scalars[-1]
    return (g_input, g_weight, g_offset, g_mask if use_mask else None, g_bias) + _no_grads(9)


FORMULAS = {
    "deform_conv2d": (_deform_conv2d_setup, _deform_conv2d_backward),
    "roi_align": (_roi_align_setup, _roi_align_backward),
    "roi_pool": (_roi_pool_setup, _roi_pool_backward),
    "ps_roi_align": (_ps_roi_align_setup, _ps_roi_align_backward),
    "ps_roi_pool": (_ps_roi_pool_setup, _ps_roi_pool_backward),
    "multi_scale_roi_align": (_multi_scale_setup, _multi_scale_backward),
}


def refuse_double_backward(forward_name):
    """(setup_context, backward) for a backward op: a second derivative raises, as in torchvision."""
    def setup(ctx, inputs, output):
        pass

    def backward(ctx, *grads):
        raise RuntimeError(f"double backwards on {forward_name} not supported")

    return setup, backward
