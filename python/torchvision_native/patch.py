"""patch_torchvision(): torchvision's own ops, image functions and detection models on
tvops kernels, without changing the caller's code.

Two levels:

* torchvision's C++ operators (torch.ops.torchvision.nms, roi_align, their backward
  ops, ... and torch.ops.image.decode_jpeg, ...) get tvops kernels on top of theirs in
  torch's dispatcher (CPU and CUDA keys; CompositeExplicitAutograd for the image ops).
  Everything that reaches those operators follows: torchvision.ops.*, its autograd
  formulas, fake kernels and TorchScript. Dropping the registrations (unpatch) brings
  torchvision's kernels back.
* torchvision's pure-Python functions that tvops has faster kernels for (batched_nms,
  box_iou, box_area, remove_small_boxes, and MultiScaleRoIAlign's pooling over the levels,
  one tvops call instead of a roi_align and a device sync a level) are replaced in every
  loaded torchvision module, by wrappers that fall back to torchvision's function where
  tvops can't serve the call: inputs that need gradients (box functions), devices other
  than CPU and CUDA, formats other than xyxy, one level, levels of mixed dtypes, ONNX tracing.

Results are torchvision's (same indices, bit-identical RoI features on the CPU); the
decoders return contiguous CHW tensors where torchvision returns a strided view.
"""
import contextlib
import importlib
import sys
from typing import List, Optional

import torch
from torch import Tensor

from . import _torch

__all__ = ["patch_torchvision", "unpatch_torchvision", "patched_torchvision", "is_torchvision_patched"]

# torchvision:: operators served by the kernel of the same name in _torch/kernels.py.
TORCHVISION_OPS = (
    "nms", "roi_align", "_roi_align_backward", "roi_pool", "_roi_pool_backward", "ps_roi_align",
    "_ps_roi_align_backward", "ps_roi_pool", "_ps_roi_pool_backward", "deform_conv2d", "_deform_conv2d_backward",
)
IMAGE_OPS = ("decode_jpeg", "decode_png", "decode_image", "encode_jpeg", "encode_png")

_state = None  # while patched: (libraries, [(module, attribute, original)])

# torchvision's Python functions, for the fallbacks below (module globals, not a dict,
# so torch.jit.script resolves them like any function).
_tv_batched_nms = _tv_box_iou = _tv_box_area = _tv_remove_small_boxes = None
_tv__multiscale_roi_align = _tv__convert_to_roi_format = None
LevelMapper = None  # torchvision.ops.poolers.LevelMapper while patched (an annotation TorchScript resolves)


# ---- image:: kernels (torchvision's schemas; data is a 1-d uint8 CPU tensor) ----

def _decode_jpeg(data, mode, apply_exif_orientation=False):
    from . import io

    return io.decode_jpeg(data, mode, apply_exif_orientation=apply_exif_orientation)


def _decode_png(data, mode, apply_exif_orientation=False):
    from . import io

    return io.decode_png(data, mode, apply_exif_orientation)


def _decode_image(data, mode, apply_exif_orientation=False):
    from . import io

    head = bytes(data[:16].tolist()) if data.dim() == 1 and data.dtype == torch.uint8 else b""
    # tvops decodes JPEG and PNG; torchvision's decode_image sends GIF and WebP to its
    # own decoders, which stay torchvision's.
    if head.startswith(b"GIF8"):
        return torch.ops.image.decode_gif(data)
    if head[:4] == b"RIFF" and head[8:15] == b"WEBPVP8":
        return torch.ops.image.decode_webp(data, mode)
    return io.decode_image(data, mode, apply_exif_orientation)


def _encode_jpeg(data, quality):
    from . import io

    return io.encode_jpeg(data, quality)


def _encode_png(data, compression_level):
    from . import io

    return io.encode_png(data, compression_level)


_IMAGE_KERNELS = {"decode_jpeg": _decode_jpeg, "decode_png": _decode_png, "decode_image": _decode_image,
                  "encode_jpeg": _encode_jpeg, "encode_png": _encode_png}


# ---- Python-level replacements (scriptable; torchvision's function where tvops can't) ----

def _native_device(t: Tensor) -> bool:
    return t.device.type == "cpu" or t.device.type == "cuda"


def _needs_grad(t: Tensor) -> bool:
    return t.requires_grad and torch.is_grad_enabled()


# Eager calls take torchvision_native's plain-eager shortcut (_torch/eager.py: the kernel
# without the dispatcher round trip, ~15 us a call); TorchScript compiles the
# torch.ops.tvops branch and skips these (@torch.jit.unused).
@torch.jit.unused
def _eager_batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    return _torch.ops.batched_nms(boxes, scores, idxs, iou_threshold)


@torch.jit.unused
def _eager_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    return _torch.ops.box_iou(boxes1, boxes2)


@torch.jit.unused
def _eager_box_area(boxes: Tensor) -> Tensor:
    return _torch.ops.box_area(boxes, "xyxy")


@torch.jit.unused
def _eager_remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    return _torch.ops.remove_small_boxes(boxes, min_size)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """torchvision.ops.batched_nms on tvops' one-pass kernel (patch_torchvision)."""
    if not _native_device(boxes):
        return _tv_batched_nms(boxes, scores, idxs, iou_threshold)
    if torch.jit.is_scripting():
        return torch.ops.tvops.batched_nms(boxes, scores, idxs, iou_threshold)
    return _eager_batched_nms(boxes, scores, idxs, iou_threshold)


def box_iou(boxes1: Tensor, boxes2: Tensor, fmt: str = "xyxy") -> Tensor:
    """torchvision.ops.box_iou on tvops' kernel (patch_torchvision)."""
    if not _native_device(boxes1) or _needs_grad(boxes1) or _needs_grad(boxes2) or fmt != "xyxy":
        return _tv_box_iou(boxes1, boxes2, fmt)
    if torch.jit.is_scripting():
        return torch.ops.tvops.box_iou(boxes1, boxes2)
    return _eager_box_iou(boxes1, boxes2)


def box_area(boxes: Tensor, fmt: str = "xyxy") -> Tensor:
    """torchvision.ops.box_area on tvops' CPU kernel (patch_torchvision). On CUDA torch's
    three elementwise launches cost less host time than any op call, so torchvision's runs."""
    if boxes.device.type != "cpu" or _needs_grad(boxes) or fmt != "xyxy":
        return _tv_box_area(boxes, fmt)
    if torch.jit.is_scripting():
        return torch.ops.tvops.box_area(boxes, fmt)
    return _eager_box_area(boxes)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """torchvision.ops.remove_small_boxes on tvops' kernel (patch_torchvision)."""
    if not _native_device(boxes):
        return _tv_remove_small_boxes(boxes, min_size)
    if torch.jit.is_scripting():
        return torch.ops.tvops.remove_small_boxes(boxes, float(min_size))
    return _eager_remove_small_boxes(boxes, float(min_size))


@torch.jit.unused
def _eager_multi_scale_roi_align(features: List[Tensor], scales: List[float], rois: Tensor, levels: Tensor,
                                 pooled_height: int, pooled_width: int, sampling_ratio: int) -> Tensor:
    # Plain eager calls skip the dispatcher round trip (see _torch/eager.py).
    return _torch.ops.multi_scale_roi_align(features, scales, rois, levels, pooled_height, pooled_width,
                                            sampling_ratio, False)


def _multiscale_roi_align(x_filtered: List[Tensor], boxes: List[Tensor], output_size: List[int], sampling_ratio: int,
                          scales: Optional[List[float]], mapper: Optional["LevelMapper"]) -> Tensor:
    """torchvision.ops.poolers._multiscale_roi_align (MultiScaleRoIAlign's pooling) with every
    level pooled in one tvops call, where torchvision makes a roi_align, a torch.where (a
    device sync) and an index_put a level (patch_torchvision). Torchvision's own function
    serves one level, more levels than the CUDA kernels take (8), ONNX tracing, and maps
    or boxes of several dtypes or devices: under autocast (fp16 maps, fp32 ground-truth
    boxes in training) its roi_align casts them, which the fused op does not."""
    if scales is None or mapper is None or len(x_filtered) < 2 or len(x_filtered) > 8 or torch.jit.is_tracing():
        return _tv__multiscale_roi_align(x_filtered, boxes, output_size, sampling_ratio, scales, mapper)
    first = x_filtered[0]
    rois = _tv__convert_to_roi_format(boxes)
    fused = _native_device(first)
    for t in x_filtered + [rois]:
        fused = fused and t.dtype == first.dtype and t.device == first.device
    if not fused:
        return _tv__multiscale_roi_align(x_filtered, boxes, output_size, sampling_ratio, scales, mapper)
    levels = mapper(boxes)
    if torch.jit.is_scripting():
        return torch.ops.tvops.multi_scale_roi_align(x_filtered, scales, rois, levels, output_size[0], output_size[1],
                                                     sampling_ratio, False)
    return _eager_multi_scale_roi_align(x_filtered, scales, rois, levels, output_size[0], output_size[1],
                                        sampling_ratio)


# Not clip_boxes_to_image: torch's clamp on the [K, classes, 4] boxes of the detection heads
# beats tvops' CPU kernel (benchmarks/results/detection-models-cpu.md).
# (torchvision module, function) -> its replacement.
_PYTHON_REPLACEMENTS = {
    ("torchvision.ops.boxes", "batched_nms"): batched_nms,
    ("torchvision.ops.boxes", "box_iou"): box_iou,
    ("torchvision.ops.boxes", "box_area"): box_area,
    ("torchvision.ops.boxes", "remove_small_boxes"): remove_small_boxes,
    ("torchvision.ops.poolers", "_multiscale_roi_align"): _multiscale_roi_align,
}


def _torchvision_modules():
    return [m for name, m in list(sys.modules.items())
            if m is not None and (name == "torchvision" or name.startswith("torchvision."))]


def _replace_everywhere(original, replacement, saved):
    """Rebinds every loaded torchvision module's reference to `original` (modules that
    did `from torchvision.ops.boxes import box_area` hold their own)."""
    for module in _torchvision_modules():
        for attribute, value in list(vars(module).items()):
            if value is original:
                setattr(module, attribute, replacement)
                saved.append((module, attribute, original))


def patch_torchvision(ops=True, io=True, python_ops=True):
    """Runs torchvision's ops (ops), image codecs (io) and box functions (python_ops) on
    tvops kernels until unpatch_torchvision(). Idempotent."""
    global _state
    if _state is not None:
        return
    if not _torch.register():
        raise RuntimeError("patch_torchvision needs torch >= 2.4 with the tvops custom ops registered "
                           "(TORCHVISION_NATIVE_CUSTOM_OPS=0 turns them off)")
    import torchvision
    import torchvision.io  # noqa: F401 - loads the image:: operators
    from ._torch import kernels

    libraries, saved = [], []
    if ops:
        library = torch.library.Library("torchvision", "IMPL")
        for name in TORCHVISION_OPS:
            if hasattr(torch.ops.torchvision, name) and hasattr(kernels, name):
                for key in ("CPU", "CUDA"):
                    library.impl(name, getattr(kernels, name), key)
        libraries.append(library)
    if io:
        library = torch.library.Library("image", "IMPL")
        for name in IMAGE_OPS:
            if hasattr(torch.ops.image, name):
                # CPU too: torchvision 0.26 registers these with a CPU kernel, which the
                # dispatcher prefers to a composite one.
                for key in ("CPU", "CompositeExplicitAutograd"):
                    library.impl(name, _IMAGE_KERNELS[name], key)
        libraries.append(library)
    if python_ops:
        global LevelMapper, _tv__convert_to_roi_format
        poolers = importlib.import_module("torchvision.ops.poolers")
        LevelMapper = getattr(poolers, "LevelMapper", None)
        _tv__convert_to_roi_format = getattr(poolers, "_convert_to_roi_format", None)
        for (module, name), replacement in _PYTHON_REPLACEMENTS.items():
            original = getattr(importlib.import_module(module), name, None)
            if original is None or (name == "_multiscale_roi_align" and _tv__convert_to_roi_format is None):
                continue  # another torchvision's internals: its own function stays
            globals()["_tv_" + name] = original
            _replace_everywhere(original, replacement, saved)
    _state = (libraries, saved)


def unpatch_torchvision():
    """Brings torchvision's own kernels and functions back."""
    global _state
    if _state is None:
        return
    libraries, saved = _state
    for library in libraries:
        library._destroy()  # drops our kernels: the dispatcher serves the ones registered before them
    for module, attribute, original in reversed(saved):
        setattr(module, attribute, original)
    _state = None


def is_torchvision_patched():
    return _state is not None


@contextlib.contextmanager
def patched_torchvision(**kwargs):
    """`with patched_torchvision(): ...` patches for the block (unless already patched)."""
    already = _state is not None
    patch_torchvision(**kwargs)
    try:
        yield
    finally:
        if not already:
            unpatch_torchvision()
