"""torchvision.io's image functions on tvops' codecs (libjpeg-turbo, libpng).

Same names, arguments and pixel values as torchvision.io; the differences:

* Decoders return contiguous CHW tensors (torchvision returns a strided view of
  HWC memory); torch tensors in give torch tensors out, numpy arrays in give numpy
  arrays out (bytes in: torch when torch is imported, else numpy).
* Hostile input raises instead of crashing, and images above
  ``max_image_pixels()`` (default 2**28) are refused before any allocation.
* Beyond torchvision: ``min_size`` / ``crop`` decode straight to a smaller size or a
  region (libjpeg-turbo's DCT scaling and cropped decoding), and ``decode_images``
  decodes a list on the CPU thread pool (a list given to ``decode_jpeg`` does too).
"""
import enum
import os
import sys

import numpy as np

from .. import _C
from .._convert import is_torch, to_native

__all__ = [
    "ImageReadMode", "decode_jpeg", "decode_png", "decode_image", "decode_images", "encode_jpeg", "encode_png",
    "read_file", "write_file", "read_image", "write_jpeg", "write_png", "set_max_image_pixels", "max_image_pixels",
]


class ImageReadMode(enum.Enum):
    """torchvision.io.ImageReadMode (same values; torchvision's own members and the
    strings "RGB", "rgb_alpha", "RGBA", ... are accepted wherever a mode is)."""

    UNCHANGED = 0
    GRAY = 1
    GRAY_ALPHA = 2
    RGB = 3
    RGB_ALPHA = 4
    RGBA = RGB_ALPHA


def _mode(mode):
    if isinstance(mode, str):
        key = mode.upper()
        if key not in ImageReadMode.__members__:
            raise ValueError(f"Unknown image read mode {mode!r}; expected one of {list(ImageReadMode.__members__)}")
        return ImageReadMode[key].value
    value = getattr(mode, "value", mode)  # ours, torchvision's, or an int
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= int(value) <= 4:
        return int(value)
    raise ValueError(f"Unknown image read mode {mode!r}")


def _pair(v, name):
    if v is None:
        return 0, 0
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = tuple(int(x) for x in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a (height, width) pair, got {v!r}")
    return v


def _size(min_size, crop):
    """(min_height, min_width, top, left, height, width) for the native calls."""
    mh, mw = _pair(min_size, "min_size")
    if crop is None:
        return (mh, mw, 0, 0, 0, 0)
    crop = tuple(int(x) for x in crop)
    if len(crop) != 4:
        raise ValueError(f"crop must be (top, left, height, width), got {crop!r}")
    if crop[2] <= 0 or crop[3] <= 0:
        raise ValueError(f"crop height and width must be positive, got {crop!r}")
    return (mh, mw) + crop


def _torch_wanted(like):
    if like is not None:
        return is_torch(like)
    return "torch" in sys.modules


def _out(t, like):
    if _torch_wanted(like):
        return sys.modules["torch"].utils.dlpack.from_dlpack(t.to_capsule())
    return np.from_dlpack(t)


def _encoded(data, name="input"):
    """(native tensor, what the output should look like) for encoded bytes."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return to_native(np.frombuffer(data, dtype=np.uint8).copy(), name), None
    if is_torch(data) and data.device.type != "cpu":
        raise ValueError("Input tensor must be a CPU tensor")
    return to_native(data, name), data


def _is_cuda_device(device):
    return str(device).startswith("cuda")


def _device_index(device):
    text = str(device)
    if ":" in text:
        return int(text.split(":", 1)[1])
    torch = sys.modules.get("torch")
    return torch.cuda.current_device() if torch is not None and torch.cuda.is_available() else 0


def _find_nvjpeg():
    """Points tvops at PyPI's nvJPEG (nvidia-nvjpeg, which torch's CUDA wheels also use)
    when the dynamic loader would not find it on its own."""
    import os

    if os.environ.get("TVOPS_NVJPEG_LIBRARY"):
        return
    try:
        import nvidia  # namespace package of NVIDIA's PyPI wheels
    except ImportError:
        return
    for root in getattr(nvidia, "__path__", []):
        for sub in ("cu13/lib/libnvjpeg.so.13", "nvjpeg/lib/libnvjpeg.so.13", "nvjpeg/lib/libnvjpeg.so.12"):
            path = os.path.join(root, sub)
            if os.path.exists(path):
                os.environ["TVOPS_NVJPEG_LIBRARY"] = path
                return


_find_nvjpeg()


def _cuda_stream(device):
    """torch's current stream on that device (0: the legacy default stream)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return 0  # the native call then says why it can't decode there
    return torch.cuda.current_stream(_device_index(device)).cuda_stream


def decode_jpeg(input, mode=ImageReadMode.UNCHANGED, device="cpu", apply_exif_orientation=False, *,
                min_size=None, crop=None):
    """Decodes JPEG bytes (a 1-d uint8 tensor or array, or a list of them) into uint8 [C, H, W].

    mode: UNCHANGED (the file's components; CMYK as stored), GRAY or RGB (CMYK
    converted as torchvision does). device="cuda" decodes with nvJPEG where tvops was
    built with it (this build raises otherwise). A list decodes on the CPU thread pool.

    min_size=(h, w) (or an int): decode at the smallest DCT scale (1/8 .. 8/8) that is
    still at least that large (then resize). crop=(top, left, height, width): only
    that region of the full-size image (scaled with min_size). See tvops/io.h.
    """
    m = _mode(mode)
    size = _size(min_size, crop)
    if isinstance(input, (list, tuple)):
        if len(input) == 0:
            raise ValueError("Input list must contain at least one element")
        if not all(is_torch(x) or isinstance(x, np.ndarray) for x in input):
            raise ValueError("All elements of the input list must be tensors.")
        if any(is_torch(x) and x.device.type != "cpu" for x in input):
            raise ValueError("Input list must contain tensors on CPU.")
        if _is_cuda_device(device):
            outs = _C.decode_jpegs_cuda([to_native(x, "input") for x in input], m, _device_index(device),
                                        _cuda_stream(device))
            return [_out(o, input[0]) for o in outs]
        outs = _C.decode_jpegs([to_native(x, "input") for x in input], m, bool(apply_exif_orientation), size)
        return [_out(o, x) for o, x in zip(outs, input)]
    data, like = _encoded(input)
    if _is_cuda_device(device):
        return _out(_C.decode_jpegs_cuda([data], m, _device_index(device), _cuda_stream(device))[0], like)
    return _out(_C.decode_jpeg(data, m, bool(apply_exif_orientation), size), like)


def decode_png(input, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=False, *, crop=None):
    """Decodes PNG bytes into [C, H, W]: uint8, or uint16 for 16-bit files.

    UNCHANGED gives the stored channels (palette indices for palette files).
    crop=(top, left, height, width) returns only that region."""
    data, like = _encoded(input)
    return _out(_C.decode_png(data, _mode(mode), bool(apply_exif_orientation), _size(None, crop)), like)


def _path_or_data(input):
    if isinstance(input, (str, os.PathLike)):
        return _C.read_file(os.fspath(input)), None
    return _encoded(input)


def decode_image(input, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=False, *, min_size=None, crop=None):
    """Decodes a JPEG or PNG (by magic bytes) from bytes, a tensor/array or a path."""
    data, like = _path_or_data(input)
    return _out(_C.decode_image(data, _mode(mode), bool(apply_exif_orientation), _size(min_size, crop)), like)


def decode_images(inputs, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=False, *, min_size=None, crop=None):
    """decode_image of every element, on the CPU thread pool (torchvision_native.set_num_threads).

    Returns a list in input order; the first failure raises naming its index."""
    natives, likes = [], []
    for x in inputs:
        data, like = _path_or_data(x)
        natives.append(data)
        likes.append(like)
    outs = _C.decode_images(natives, _mode(mode), bool(apply_exif_orientation), _size(min_size, crop))
    return [_out(o, like) for o, like in zip(outs, likes)]


def read_image(path, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=False):
    """read_file + decode_image."""
    return decode_image(path, mode, apply_exif_orientation)


def encode_jpeg(input, quality=75):
    """Encodes uint8 [C, H, W] (C = 1 or 3), or a list of them, as JPEG (libjpeg defaults,
    baseline, 4:2:0 for RGB). Returns 1-d uint8 bytes of the input's type."""
    if not 1 <= quality <= 100:
        raise ValueError("Image quality should be a positive number between 1 and 100")
    if isinstance(input, (list, tuple)):
        if len(input) == 0:
            raise ValueError("encode_jpeg requires at least one input tensor when a list is passed")
        return [encode_jpeg(x, quality) for x in input]
    if is_torch(input) and input.device.type != "cpu":
        raise _C.TvopsError("encode_jpeg: input: this build of tvops has no GPU JPEG encoder; encode on the CPU")
    return _out(_C.encode_jpeg(to_native(input, "input"), int(quality)), input)


def encode_png(input, compression_level=6):
    """Encodes [C, H, W] (uint8 or uint16, C = 1..4) as PNG, losslessly."""
    if is_torch(input) and input.device.type != "cpu":
        raise _C.TvopsError("encode_png: input: Input tensor should be on CPU")
    return _out(_C.encode_png(to_native(input, "input"), int(compression_level)), input)


def read_file(path):
    """The bytes of a file as a 1-d uint8 tensor (numpy array without torch)."""
    return _out(_C.read_file(os.fspath(path)), None)


def write_file(filename, data):
    """Writes a 1-d uint8 tensor or array to a file."""
    _C.write_file(os.fspath(filename), to_native(data, "data"))


def write_jpeg(input, filename, quality=75):
    write_file(filename, encode_jpeg(input, quality))


def write_png(input, filename, compression_level=6):
    write_file(filename, encode_png(input, compression_level))


def set_max_image_pixels(pixels):
    """Decoders refuse images of more than this many pixels (0 or None: no limit).
    Default 2**28. Process-wide."""
    _C.set_max_image_pixels(int(pixels or 0))


def max_image_pixels():
    return _C.max_image_pixels()
