"""Pixel parity of torchvision_native.io's decoders with torchvision.io's, every mode.

The files come from io_images.py: real photos (scikit-image) and synthetic images,
re-encoded in many JPEG and PNG variants at test time. Where torchvision's own
output is undefined (see csrc/io/png_decode.cpp) the expected values are built from
its well-defined modes instead.
"""
import io
import os
import re

import numpy as np
import pytest
import torch
import torchvision.io as tio
from PIL import Image, ImageOps

import io_images
import torchvision_native as tvn
from torchvision_native.io import ImageReadMode

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

JPEGS = list(io_images.jpeg_files())
PNGS = list(io_images.png_files())
JPEG_MODES = [ImageReadMode.UNCHANGED, ImageReadMode.GRAY, ImageReadMode.RGB]
PNG_MODES = list(ImageReadMode.__members__.values())[:5]


def as_tensor(b):
    return torch.frombuffer(bytearray(b), dtype=torch.uint8)


def tv_mode(mode):
    return tio.ImageReadMode(mode.value)


@pytest.mark.parametrize("name,data", JPEGS, ids=[n for n, _ in JPEGS])
def test_decode_jpeg_matches_torchvision(name, data):
    t = as_tensor(data)
    for mode in JPEG_MODES:
        ours = tvn.io.decode_jpeg(t, mode=mode)
        theirs = tio.decode_jpeg(t, mode=tv_mode(mode))
        assert ours.is_contiguous() and ours.dtype == torch.uint8
        assert torch.equal(ours, theirs), (name, mode)


def test_jpeg_alpha_modes_raise_like_torchvision():
    t = as_tensor(JPEGS[0][1])
    for mode in (ImageReadMode.GRAY_ALPHA, ImageReadMode.RGB_ALPHA):
        with pytest.raises(ValueError, match="The provided mode is not supported for JPEG files"):
            tvn.io.decode_jpeg(t, mode=mode)
        with pytest.raises(RuntimeError):
            tio.decode_jpeg(t, mode=tv_mode(mode))


def _sub_byte(name):
    return re.search(r"-(gray|palette)[124](-|$)", name) is not None


def _undefined_in_torchvision(name, mode):
    """torchvision's decode_png gives unusable output here (see png_decode.cpp)."""
    alpha_mode = mode in (ImageReadMode.GRAY_ALPHA, ImageReadMode.RGB_ALPHA)
    sub_byte = _sub_byte(name)
    palette_no_trns = "palette" in name and "trns" not in name
    return (alpha_mode and (sub_byte or palette_no_trns)) or (
        "palette" in name and sub_byte and mode == ImageReadMode.UNCHANGED)


@pytest.mark.parametrize("name,data", PNGS, ids=[n for n, _ in PNGS])
def test_decode_png_matches_torchvision(name, data):
    t = as_tensor(data)
    for mode in PNG_MODES:
        ours = tvn.io.decode_png(t, mode=mode)
        assert ours.is_contiguous()
        if _undefined_in_torchvision(name, mode):
            continue
        theirs = tio.decode_png(t, mode=tv_mode(mode))
        assert ours.dtype == theirs.dtype and torch.equal(ours, theirs), (name, mode)


UNDEFINED = [(n, d) for n, d in PNGS if "palette" in n or _sub_byte(n)]


@pytest.mark.parametrize("name,data", UNDEFINED, ids=[n for n, _ in UNDEFINED])
def test_decode_png_where_torchvision_is_undefined(name, data):
    """Alpha modes of opaque images get an opaque alpha; sub-byte palettes give indices."""
    t = as_tensor(data)
    gray, rgb = tvn.io.decode_png(t, mode="GRAY"), tvn.io.decode_png(t, mode="RGB")
    assert torch.equal(gray, tio.decode_png(t, mode=tio.ImageReadMode.GRAY))
    assert torch.equal(rgb, tio.decode_png(t, mode=tio.ImageReadMode.RGB))
    ga, rgba = tvn.io.decode_png(t, mode="GRAY_ALPHA"), tvn.io.decode_png(t, mode="RGBA")
    assert torch.equal(ga[:1], gray) and torch.equal(rgba[:3], rgb)
    if "trns" not in name:
        assert (ga[1] == 255).all() and (rgba[3] == 255).all()
    if "palette" in name:
        indices = np.array(Image.open(io.BytesIO(data)))
        assert np.array_equal(tvn.io.decode_png(t).numpy()[0], indices)


def test_16bit_png_gives_uint16():
    name, data = next((n, d) for n, d in PNGS if n.endswith("rgb16"))
    out = tvn.io.decode_png(as_tensor(data))
    assert out.dtype == torch.uint16 and out.shape[0] == 3
    assert torch.equal(out, tio.decode_png(as_tensor(data)))


def test_numpy_and_bytes_inputs():
    name, data = JPEGS[0]
    ref = tio.decode_jpeg(as_tensor(data))
    out = tvn.io.decode_jpeg(np.frombuffer(data, dtype=np.uint8).copy())
    assert isinstance(out, np.ndarray) and out.flags.c_contiguous and np.array_equal(out, ref.numpy())
    assert torch.equal(tvn.io.decode_image(data), ref)  # bytes in: torch out (torch is imported)


@pytest.mark.parametrize("mode", [tio.ImageReadMode.RGB, "RGB", "rgb", 3, ImageReadMode.RGB])
def test_mode_spellings(mode):
    t = as_tensor(JPEGS[0][1])
    assert tvn.io.decode_jpeg(t, mode=mode).shape[0] == 3


def test_rgba_alias_and_unknown_mode():
    t = as_tensor(PNGS[0][1])
    assert tvn.io.decode_png(t, mode="RGBA").shape[0] == 4
    assert tvn.io.decode_png(t, mode=tio.ImageReadMode.RGB_ALPHA).shape[0] == 4
    with pytest.raises(ValueError):
        tvn.io.decode_png(t, mode="CMYK")
    with pytest.raises(ValueError):
        tvn.io.decode_png(t, mode=7)


def test_decode_image_dispatches_and_reads_paths(tmp_path):
    for name, data in (JPEGS[0], PNGS[0]):
        t = as_tensor(data)
        for mode in (ImageReadMode.UNCHANGED, ImageReadMode.RGB):
            assert torch.equal(tvn.io.decode_image(t, mode=mode), tio.decode_image(t, mode=tv_mode(mode)))
        path = tmp_path / name
        path.write_bytes(data)
        assert torch.equal(tvn.io.decode_image(path), tio.decode_image(str(path)))
        assert torch.equal(tvn.io.read_image(str(path)), tio.read_image(str(path)))


# ---------------------------------------------------------------------------------------
# EXIF orientation

def _photo():
    return io_images.rgb(io_images.photos()["gradient-97x131"])


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("little", [True, False])
def test_jpeg_exif_orientation(orientation, little):
    data = io_images.with_exif_jpeg(io_images.pil_jpeg(_photo(), quality=95), orientation, little)
    t = as_tensor(data)
    ours = tvn.io.decode_jpeg(t, apply_exif_orientation=True)
    assert torch.equal(ours, tio.decode_jpeg(t, apply_exif_orientation=True))
    pil = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    assert ours.shape[1:] == pil.shape[:2]
    plain = tvn.io.decode_jpeg(t)  # pixels equal libjpeg's, so only the layout is compared with PIL
    assert torch.equal(tvn.io.decode_jpeg(t, apply_exif_orientation=False), plain)
    if orientation == 1:
        assert torch.equal(ours, plain)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_png_exif_orientation(orientation):
    a = _photo()
    data = io_images.png(a, 2, 8, exif=orientation)
    t = as_tensor(data)
    ours = tvn.io.decode_png(t, apply_exif_orientation=True)
    assert torch.equal(ours, tio.decode_png(t, apply_exif_orientation=True))
    pil = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data)))).transpose(2, 0, 1)
    assert np.array_equal(ours.numpy(), pil)


@pytest.mark.parametrize("size", [1, 5, 100, 4000, 65000])
def test_garbage_exif_is_ignored(size):
    jpeg = io_images.pil_jpeg(_photo(), quality=90)
    payload = b"Exif\0\0" + b"1" * size
    data = jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]
    out = tvn.io.decode_jpeg(as_tensor(data), apply_exif_orientation=True)
    assert torch.equal(out, tvn.io.decode_jpeg(as_tensor(jpeg)))


def test_build_info_names_the_codecs():
    info = tvn.build_info()
    assert info["jpeg"].startswith("libjpeg") and info["png"].startswith("libpng")
    assert os.path.basename(tvn.io.__file__) == "__init__.py"
