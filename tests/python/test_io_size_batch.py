"""Decode to size (DCT scaling, cropped decode) and the batched decode."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.io as tio

import io_images
import torchvision_native as tvn

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

PHOTOS = io_images.photos()


def jpeg(name, **kw):
    return torch.frombuffer(bytearray(io_images.pil_jpeg(io_images.rgb(PHOTOS[name]), **kw)), dtype=torch.uint8)


def big_jpeg(size=1024, **kw):
    a = torch.from_numpy(PHOTOS["astronaut"]).permute(2, 0, 1)[None].float()
    big = F.interpolate(a, size=(size, size), mode="bilinear").round().clamp(0, 255).byte()[0]
    return tio.encode_jpeg(big, quality=kw.pop("quality", 90)) if not kw else torch.frombuffer(
        bytearray(io_images.pil_jpeg(big.permute(1, 2, 0).numpy(), quality=90, **kw)), dtype=torch.uint8)


def span(full, start, length, m):
    return start * m // 8, min(math.ceil(full * m / 8), math.ceil((start + length) * m / 8))


def expected_scale(h, w, min_h, min_w, crop=None):
    top, left, ch, cw = crop or (0, 0, h, w)
    for m in range(1, 9):
        a, b = span(h, top, ch, m)
        c, d = span(w, left, cw, m)
        if b - a >= min_h and d - c >= min_w:
            return m, (b - a, d - c)
    return 8, (ch, cw)


@pytest.mark.parametrize("subsampling", [0, 1, 2])
@pytest.mark.parametrize("min_size", [1, 60, 100, 128, 200, 300, 511, 512, 700])
def test_decode_to_size_shape_and_pixels(subsampling, min_size):
    data = jpeg("astronaut", quality=92, subsampling=subsampling)
    full = tio.decode_jpeg(data)
    out = tvn.io.decode_jpeg(data, min_size=min_size)
    m, shape = expected_scale(512, 512, min_size, min_size)
    assert tuple(out.shape) == (3,) + shape
    assert min(out.shape[1:]) >= min(min_size, 512)
    if m == 8:
        assert torch.equal(out, full)
        return
    # DCT scaling by 1/2, 1/4, 1/8 is close to box averaging; other M/8 to an
    # antialiased resize.
    box = 8 % m == 0
    ref = F.interpolate(full[None].float(), size=shape, mode="area" if box else "bilinear", antialias=not box)[0]
    diff = (out.float() - ref).abs()
    mean, q99 = 3.0, 25  # chroma at 1/8 of 4:2:x differs most
    assert diff.mean() < mean and diff.quantile(0.99) < q99, (m, diff.mean(), diff.max())


@pytest.mark.parametrize("crop", [(0, 0, 512, 512), (100, 50, 200, 300), (1, 3, 17, 29), (497, 500, 15, 12),
                                  (256, 0, 256, 512), (0, 255, 512, 1)])
@pytest.mark.parametrize("subsampling", [0, 1, 2])
@pytest.mark.parametrize("mode", ["UNCHANGED", "GRAY", "RGB"])
def test_crop_is_exact(crop, subsampling, mode):
    """Cropped decoding equals slicing the full decode (libjpeg's crop gets a margin)."""
    data = jpeg("astronaut", quality=90, subsampling=subsampling)
    full = tvn.io.decode_jpeg(data, mode=mode)
    t, l, h, w = crop
    assert torch.equal(tvn.io.decode_jpeg(data, mode=mode, crop=crop), full[:, t:t + h, l:l + w])


@pytest.mark.parametrize("kind", ["progressive", "gray", "cmyk", "restart"])
def test_crop_other_jpegs(kind):
    a = io_images.rgb(PHOTOS["coffee"])
    data = {"progressive": lambda: io_images.pil_jpeg(a, quality=85, progressive=True),
            "gray": lambda: io_images.pil_jpeg(io_images.gray(a), quality=85),
            "cmyk": lambda: io_images.cmyk_jpeg(a),
            "restart": lambda: io_images.pil_jpeg(a, quality=90, restart_marker_blocks=3)}[kind]()
    t = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    for mode in ("UNCHANGED", "RGB", "GRAY"):
        full = tvn.io.decode_jpeg(t, mode=mode)
        assert torch.equal(full, tio.decode_jpeg(t, mode=getattr(tio.ImageReadMode, mode)))
        assert torch.equal(tvn.io.decode_jpeg(t, mode=mode, crop=(33, 47, 201, 333)), full[:, 33:234, 47:380])
        small = tvn.io.decode_jpeg(t, mode=mode, min_size=(100, 150))
        assert tuple(small.shape[1:]) == expected_scale(400, 600, 100, 150)[1]


def test_crop_and_scale_together():
    data = jpeg("astronaut", quality=90)
    crop = (64, 128, 256, 320)
    out = tvn.io.decode_jpeg(data, crop=crop, min_size=(64, 80))
    m, shape = expected_scale(512, 512, 64, 80, crop)
    assert m == 2 and tuple(out.shape[1:]) == shape
    quarter = tvn.io.decode_jpeg(data, min_size=128)  # the same scale, whole image
    assert torch.equal(out, quarter[:, 16:80, 32:112])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_crop_follows_exif_orientation(orientation):
    a = io_images.rgb(PHOTOS["chelsea"])
    data = torch.frombuffer(bytearray(io_images.with_exif_jpeg(io_images.pil_jpeg(a, quality=90), orientation)),
                            dtype=torch.uint8)
    full = tvn.io.decode_jpeg(data, apply_exif_orientation=True)
    crop = (20, 30, 100, 150)  # in displayed coordinates
    out = tvn.io.decode_jpeg(data, apply_exif_orientation=True, crop=crop)
    assert torch.equal(out, full[:, 20:120, 30:180])
    png = torch.frombuffer(bytearray(io_images.png(a, 2, 8, exif=orientation)), dtype=torch.uint8)
    pfull = tvn.io.decode_png(png, apply_exif_orientation=True)
    assert torch.equal(tvn.io.decode_png(png, apply_exif_orientation=True, crop=crop), pfull[:, 20:120, 30:180])
    small = tvn.io.decode_jpeg(data, apply_exif_orientation=True, min_size=(60, 100))
    assert small.shape[1] >= 60 and small.shape[2] >= 100 and small.shape[1] < full.shape[1]


def test_png_crop_and_min_size():
    data = torch.frombuffer(bytearray(io_images.png(io_images.rgb(PHOTOS["coffee"]), 2, 8, interlace=True)),
                            dtype=torch.uint8)
    full = tvn.io.decode_png(data)
    assert torch.equal(tvn.io.decode_png(data, crop=(5, 6, 70, 80)), full[:, 5:75, 6:86])
    assert torch.equal(tvn.io.decode_image(data, min_size=50), full)  # no scaled PNG decode: full size


def test_bad_crops_raise():
    data = jpeg("coffee", quality=80)
    for crop in [(-1, 0, 10, 10), (0, 0, 401, 10), (399, 599, 2, 1), (400, 0, 1, 1)]:
        with pytest.raises(ValueError, match="crop"):
            tvn.io.decode_jpeg(data, crop=crop)
    with pytest.raises(ValueError):
        tvn.io.decode_jpeg(data, crop=(0, 0, 0, 5))
    with pytest.raises(ValueError):
        tvn.io.decode_jpeg(data, crop=(0, 0, 5))


# ---------------------------------------------------------------------------------------
# One image on two threads (the split baseline decode) and batches

@pytest.mark.parametrize("kw", [{}, {"subsampling": 0}, {"subsampling": 1}, {"restart_marker_blocks": 2},
                                {"progressive": True}])
def test_split_decode_equals_single_thread(kw, num_threads):
    data = big_jpeg(1024, **kw)
    ref = tio.decode_jpeg(data)
    for threads in (1, 2, 3):
        tvn.set_num_threads(threads)
        assert torch.equal(tvn.io.decode_jpeg(data), ref), threads
        assert torch.equal(tvn.io.decode_jpeg(data, mode="GRAY"), tio.decode_jpeg(data, mode=tio.ImageReadMode.GRAY))
        assert torch.equal(tvn.io.decode_jpeg(data, crop=(100, 37, 900, 601)), ref[:, 100:1000, 37:638])
        tvn.set_num_threads(1)
        scaled = tvn.io.decode_jpeg(data, min_size=300)
        tvn.set_num_threads(threads)
        assert torch.equal(tvn.io.decode_jpeg(data, min_size=300), scaled)


def test_truncated_bottom_raises_on_two_threads(num_threads):
    data = big_jpeg(1024)
    tvn.set_num_threads(2)
    for cut in (len(data) // 2, len(data) - 10, len(data) - 2):
        with pytest.raises(ValueError):
            tvn.io.decode_jpeg(data[:cut].clone())


@pytest.mark.parametrize("threads", [1, 2])
def test_decode_images_equals_per_image(threads, num_threads):
    tvn.set_num_threads(threads)
    files = [d for _, d in io_images.jpeg_files(small=True)] + [d for _, d in io_images.png_files(small=True)]
    tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in files]
    for mode in ("UNCHANGED", "RGB"):
        outs = tvn.io.decode_images(tensors, mode=mode)
        assert len(outs) == len(tensors)
        for o, t in zip(outs, tensors):
            assert torch.equal(o, tvn.io.decode_image(t, mode=mode))
    jpegs = [t for t, d in zip(tensors, files) if d[:2] == b"\xff\xd8"]
    assert all(torch.equal(a, tio.decode_jpeg(t)) for a, t in zip(tvn.io.decode_jpeg(jpegs), jpegs))
    sized = tvn.io.decode_images(jpegs, min_size=16)
    assert all(torch.equal(a, tvn.io.decode_jpeg(t, min_size=16)) for a, t in zip(sized, jpegs))


def test_decode_images_names_the_bad_element():
    good = jpeg("coffee", quality=80)
    bad = good[:100].clone()
    with pytest.raises(ValueError, match=r"decode_images: data\[2\]: decode_jpeg: input:"):
        tvn.io.decode_images([good, good, bad, good, bad])
    with pytest.raises(ValueError, match=r"decode_jpegs: data\[1\]"):
        tvn.io.decode_jpeg([good, bad])
    with pytest.raises(ValueError, match="Input list must contain at least one element"):
        tvn.io.decode_jpeg([])
    with pytest.raises(ValueError, match="All elements of the input list must be tensors"):
        tvn.io.decode_jpeg([good, b"x"])
    assert tvn.io.decode_images([]) == []


def test_cuda_device_raises_clearly():
    """Without a GPU (test_io_cuda.py covers the GPU): a clear error, whether or not this
    build has the nvJPEG decoder and the library loads."""
    if torch.cuda.is_available():  # pragma: no cover - the GPU machine
        pytest.skip("a GPU is present")
    data = jpeg("coffee", quality=80)
    for device in ("cuda", "cuda:0"):
        with pytest.raises(RuntimeError, match="no GPU JPEG decoder|CUDA device"):
            tvn.io.decode_jpeg(data, device=device)
        with pytest.raises(RuntimeError, match="no GPU JPEG decoder|CUDA device"):
            tvn.io.decode_jpeg([data, data], device=device)


def test_concurrent_callers(num_threads):
    """Python threads (a DataLoader's) decoding at once, each call splitting its image
    over the pool: no deadlock, the same pixels."""
    from concurrent.futures import ThreadPoolExecutor
    tvn.set_num_threads(2)
    data = [big_jpeg(768), torch.frombuffer(bytearray(io_images.png(io_images.rgb(PHOTOS["astronaut"]), 2, 8)),
                                            dtype=torch.uint8)]
    refs = [tio.decode_jpeg(data[0]), tio.decode_png(data[1])]
    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda i: (i % 2, tvn.io.decode_image(data[i % 2])), range(40)))
    assert all(torch.equal(o, refs[k]) for k, o in outs)
