"""The CPU and CUDA kernels of the tvops:: custom ops: torch tensors in, the native
function, torch tensors out. Every function takes exactly its schema's arguments
(table.py), which are torchvision's for the ops torchvision has, so patch.py can hand
the same functions to torchvision's own operators.

CUDA calls run on torch's current stream of the tensor's device, and their outputs are
torch tensors of torch's caching allocator: an allocator callback in scope for the call
takes the memory with torch.empty, and the outputs come back as views of those tensors
(so record_stream and the allocator's stream bookkeeping apply to them as to any).
"""
import threading

import torch
from torch.utils.dlpack import from_dlpack as _from_capsule
from torch.utils.dlpack import to_dlpack as _to_capsule

from .. import _C
from .._convert import cuda_stream_of

_local = threading.local()  # .allocations: the torch tensors of the running CUDA call
_devices = {}  # CUDA device index -> torch.device (building one costs ~1 us a call)
_DTYPES = {str(d).replace("torch.", ""): d for d in (
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.uint16, torch.int32, torch.int64, torch.float16,
    torch.bfloat16, torch.float32, torch.float64)}


def _allocate(nbytes, device):
    where = _devices.get(device)
    if where is None:
        where = _devices[device] = torch.device("cuda", device)
    storage = torch.empty(nbytes, dtype=torch.uint8, device=where)
    _local.allocations.append(storage)
    return storage


# Made once at import: threads share it, and the native side holds a raw pointer to it.
_allocator = _C.Allocator(_allocate)


def _in(x):
    # to_native's export of a torch tensor without its type checks (well under a microsecond):
    # the CUDA ops run on the current stream of x's device (see _run).
    return _C.Tensor.from_dlpack(_to_capsule(x))


def _cuda_tensor(result, allocations):
    """A native CUDA output as the caching-allocator tensor under it (shaped like it), or
    through DLPack where it is not one whole allocation (then tvops' owner keeps it alive)."""
    ptr, nbytes, contiguous, dtype, shape = result.memory
    if nbytes and contiguous:
        for storage in allocations:
            if storage.data_ptr() == ptr:
                size = storage.numel()
                if size >= nbytes:
                    exact = storage if size == nbytes else storage[:nbytes]
                    return exact.view(_DTYPES[dtype]).view(shape)
                break
    return _from_capsule(result.to_capsule())


def _to_torch(result, allocations=None):
    if result is None:
        return None
    if isinstance(result, (tuple, list)):
        return type(result)(_to_torch(r, allocations) for r in result)
    return _from_capsule(result.to_capsule()) if allocations is None else _cuda_tensor(result, allocations)


def _run(fn, like, *args, deterministic=None):
    """fn(*args) on the CPU; on CUDA fn(*args, stream[, deterministic]) with torch's
    current stream of like's device and its caching allocator. Returns torch tensors."""
    if not like.is_cuda:
        return _to_torch(fn(*args))
    # A call can start inside another's allocation (torch.empty may run a finalizer that
    # calls an op): the outer call's list and allocator come back afterwards.
    outer = getattr(_local, "allocations", None)
    allocations = _local.allocations = []
    stream = cuda_stream_of(like)
    extra = (stream,) if deterministic is None else (stream, deterministic)
    _C.set_thread_allocator(_allocator)
    try:
        result = fn(*args, *extra)
    finally:
        _C.set_thread_allocator(None if outer is None else _allocator)
        _local.allocations = outer
    return _to_torch(result, allocations)


def _run_backward(fn, grad, *args):
    """A RoI backward: on CUDA its `deterministic` flag follows torch.use_deterministic_algorithms."""
    return _run(fn, grad, *args, deterministic=grad.is_cuda and torch.are_deterministic_algorithms_enabled())


# ---- boxes ----

def nms(dets, scores, iou_threshold):
    return _run(_C.nms, dets, _in(dets), _in(scores), iou_threshold)


def batched_nms(boxes, scores, idxs, iou_threshold):
    return _run(_C.batched_nms, boxes, _in(boxes), _in(scores), _in(idxs), iou_threshold)


def box_convert(boxes, in_fmt, out_fmt):
    return _run(_C.box_convert, boxes, _in(boxes), in_fmt, out_fmt)


def box_area(boxes, fmt="xyxy"):
    return _run(_C.box_area, boxes, _in(boxes), fmt)


def clip_boxes_to_image(boxes, height, width):
    return _run(_C.clip_boxes_to_image, boxes, _in(boxes), height, width)


def remove_small_boxes(boxes, min_size):
    return _run(_C.remove_small_boxes, boxes, _in(boxes), min_size)


def _pairwise(kind):
    def kernel(boxes1, boxes2, eps=1e-7):
        return _run(_C.pairwise_box_iou, boxes1, _in(boxes1), _in(boxes2), kind, eps)
    return kernel


box_iou = _pairwise(0)
generalized_box_iou = _pairwise(1)
distance_box_iou = _pairwise(2)
complete_box_iou = _pairwise(3)


# ---- RoI family (torchvision's argument order) ----

def roi_align(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned):
    return _run(_C.roi_align, input, _in(input), _in(rois), spatial_scale, pooled_height, pooled_width,
                sampling_ratio, aligned)


def _roi_align_backward(grad, rois, spatial_scale, pooled_height, pooled_width, batch_size, channels, height, width,
                        sampling_ratio, aligned):
    return _run_backward(_C.roi_align_backward, grad, _in(grad), _in(rois), spatial_scale, pooled_height,
                         pooled_width, batch_size, channels, height, width, sampling_ratio, aligned)


def roi_pool(input, rois, spatial_scale, pooled_height, pooled_width):
    return _run(_C.roi_pool, input, _in(input), _in(rois), spatial_scale, pooled_height, pooled_width)


def _roi_pool_backward(grad, rois, argmax, spatial_scale, pooled_height, pooled_width, batch_size, channels, height,
                       width):
    return _run_backward(_C.roi_pool_backward, grad, _in(grad), _in(rois), _in(argmax), spatial_scale,
                         pooled_height, pooled_width, batch_size, channels, height, width)


def ps_roi_align(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio):
    return _run(_C.ps_roi_align, input, _in(input), _in(rois), spatial_scale, pooled_height, pooled_width,
                sampling_ratio)


def _ps_roi_align_backward(grad, rois, channel_mapping, spatial_scale, pooled_height, pooled_width, sampling_ratio,
                           batch_size, channels, height, width):
    return _run_backward(_C.ps_roi_align_backward, grad, _in(grad), _in(rois), _in(channel_mapping), spatial_scale,
                         pooled_height, pooled_width, sampling_ratio, batch_size, channels, height, width)


def ps_roi_pool(input, rois, spatial_scale, pooled_height, pooled_width):
    return _run(_C.ps_roi_pool, input, _in(input), _in(rois), spatial_scale, pooled_height, pooled_width)


def _ps_roi_pool_backward(grad, rois, channel_mapping, spatial_scale, pooled_height, pooled_width, batch_size,
                          channels, height, width):
    return _run_backward(_C.ps_roi_pool_backward, grad, _in(grad), _in(rois), _in(channel_mapping), spatial_scale,
                         pooled_height, pooled_width, batch_size, channels, height, width)


def multi_scale_roi_align(features, scales, rois, levels, pooled_height, pooled_width, sampling_ratio, aligned):
    return _run(_C.multi_scale_roi_align, rois, [_in(f) for f in features], list(scales), _in(rois), _in(levels),
                pooled_height, pooled_width, sampling_ratio, aligned)


def _multi_scale_roi_align_backward(grad, rois, levels, scales, shapes, sampling_ratio, aligned):
    feature_shapes = [list(shapes[i:i + 4]) for i in range(0, len(shapes), 4)]
    return _run_backward(_C.multi_scale_roi_align_backward, grad, _in(grad), _in(rois), _in(levels), list(scales),
                         feature_shapes, sampling_ratio, aligned)


# ---- deform_conv2d (torchvision's argument order; mask is used only when use_mask) ----

def _allow_tf32(like):
    # CUDA float32 follows torch's switch for convolutions, as torch's own do.
    return bool(torch.backends.cudnn.allow_tf32) if like.is_cuda else True


def deform_conv2d(input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups,
                  offset_groups, use_mask):
    return _run(_C.deform_conv2d, input, _in(input), _in(weight), _in(offset), _in(mask) if use_mask else None,
                _in(bias), stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups,
                _allow_tf32(input))


def _deform_conv2d_backward(grad, input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w, dilation_h,
                            dilation_w, groups, offset_groups, use_mask):
    g_input, g_weight, g_offset, g_mask, g_bias = _run(
        _C.deform_conv2d_backward, grad, _in(grad), _in(input), _in(weight), _in(offset),
        _in(mask) if use_mask else None, _in(bias), stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups,
        offset_groups, _allow_tf32(grad))
    return g_input, g_weight, g_offset, torch.zeros_like(mask) if g_mask is None else g_mask, g_bias
