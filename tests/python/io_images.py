"""Test images for the codec tests and the fuzz corpus, made at run time.

* ``photos()``: real photos from scikit-image (astronaut, coffee, chelsea, camera,
  rocket, ...) as HWC uint8 arrays, plus synthetic ones (noise, gradients, odd sizes).
* ``jpeg_files()``: JPEGs written by Pillow in many modes: 4:4:4 / 4:2:2 / 4:2:0,
  progressive, optimized Huffman tables, restart markers, grayscale, CMYK, tiny and
  odd sizes.
* ``png_files()``: PNGs from a small writer of our own (numpy + zlib), so every
  colour type, bit depth (1, 2, 4, 8, 16), palette with and without tRNS, Adam7
  interlacing and eXIf chunks are covered (Pillow writes few of those).
* ``with_exif_jpeg`` / ``png(..., exif=)``: EXIF orientation 1..8.

Each file generator yields (name, bytes).
"""
import io
import struct
import zlib

import numpy as np

try:
    from PIL import Image
except ImportError:  # pragma: no cover - the fuzz corpus then has only PNGs
    Image = None


def _skimage_photos():
    try:
        import skimage.data as data
    except ImportError:  # pragma: no cover
        return {}
    out = {}
    for name in ("astronaut", "coffee", "chelsea", "camera", "rocket", "immunohistochemistry", "moon", "page",
                 "coins", "logo"):
        try:
            a = getattr(data, name)()
        except Exception:  # noqa: BLE001 - a photo that needs a download
            continue
        if a.dtype == np.uint8:
            out[name] = a
    return out


def synthetic(seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:97, 0:131]
    grad = np.stack([(x * 2) % 256, (y * 3) % 256, ((x + y) * 5) % 256], -1).astype(np.uint8)
    return {
        "noise-64x48": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
        "gradient-97x131": grad,
        "tiny-1x1": rng.integers(0, 256, (1, 1, 3), dtype=np.uint8),
        "odd-7x13": rng.integers(0, 256, (7, 13, 3), dtype=np.uint8),
        "odd-33x17": rng.integers(0, 256, (33, 17, 3), dtype=np.uint8),
        "gray-noise-29x41": rng.integers(0, 256, (29, 41), dtype=np.uint8),
    }


def photos(real=True):
    out = synthetic()
    if real:
        out.update(_skimage_photos())
    return out


def rgb(a):
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2)
    return a[:, :, :3]


def gray(a):
    return a if a.ndim == 2 else (a[:, :, :3].astype(np.float32) @ [0.299, 0.587, 0.114]).round().astype(np.uint8)


# ---------------------------------------------------------------------------------------
# JPEG (Pillow)

def pil_jpeg(a, **kw):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", **kw)
    return buf.getvalue()


def cmyk_jpeg(a, quality=90):
    buf = io.BytesIO()
    Image.fromarray(rgb(a)).convert("CMYK").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def jpeg_files(real=True, small=False):
    """(name, bytes) for many JPEG encodings of the photos. small: a few photos only."""
    if Image is None:  # pragma: no cover
        return
    imgs = photos(real)
    if small:
        imgs = {k: imgs[k] for k in list(imgs)[:3] + [k for k in ("astronaut", "camera") if k in imgs]}
    for name, a in imgs.items():
        c = rgb(a)
        yield f"{name}-q90-420", pil_jpeg(c, quality=90, subsampling=2)
        yield f"{name}-q75-444", pil_jpeg(c, quality=75, subsampling=0)
        yield f"{name}-q80-422", pil_jpeg(c, quality=80, subsampling=1)
        yield f"{name}-progressive", pil_jpeg(c, quality=85, progressive=True)
        yield f"{name}-optimized", pil_jpeg(c, quality=60, optimize=True)
        yield f"{name}-gray", pil_jpeg(gray(a), quality=90)
        yield f"{name}-gray-progressive", pil_jpeg(gray(a), quality=70, progressive=True)
        yield f"{name}-cmyk", cmyk_jpeg(c)
        if min(c.shape[:2]) >= 16:
            try:
                yield f"{name}-restart", pil_jpeg(c, quality=90, restart_marker_blocks=4)
            except TypeError:  # pragma: no cover - Pillow without restart markers
                pass


def _exif_block(orientation, little=True):
    e = "<" if little else ">"
    ifd = struct.pack(e + "H", 1) + struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(e + "I", 0)
    return (b"II" if little else b"MM") + struct.pack(e + "HI", 42, 8) + ifd


def with_exif_jpeg(jpeg, orientation, little=True):
    """The JPEG with an APP1 EXIF segment holding only the orientation tag."""
    payload = b"Exif\0\0" + _exif_block(orientation, little)
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + app1 + jpeg[2:]


# ---------------------------------------------------------------------------------------
# PNG (own writer: every colour type and depth, palettes, tRNS, Adam7, eXIf)

_ADAM7 = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1)]  # (y0, x0, dy, dx)
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _pack_rows(samples, depth):
    """samples: [h, w * channels] ints -> filter-0 scanlines for this depth."""
    rows = []
    for row in samples:
        if depth == 16:
            b = row.astype(">u2").tobytes()
        elif depth == 8:
            b = row.astype(np.uint8).tobytes()
        else:
            per = 8 // depth
            padded = np.zeros(((len(row) + per - 1) // per) * per, dtype=np.uint8)
            padded[: len(row)] = row
            g = padded.reshape(-1, per).astype(np.uint16)
            shifts = np.arange(per - 1, -1, -1) * depth
            b = (g << shifts).sum(axis=1).astype(np.uint8).tobytes()
        rows.append(b"\x00" + b)
    return b"".join(rows)


def png(samples, color_type, depth, palette=None, trns=None, interlace=False, exif=None, level=6, idat_size=0):
    """A PNG of samples [h, w, channels] (ints at `depth` bits; palette indices for type 3).
    idat_size > 0 splits the compressed data into IDAT chunks of that many bytes."""
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w, c = samples.shape
    assert c == _CHANNELS[color_type]
    out = [b"\x89PNG\r\n\x1a\n",
           _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0))]
    if palette is not None:
        out.append(_chunk(b"PLTE", np.asarray(palette, dtype=np.uint8).tobytes()))
    if trns is not None:
        out.append(_chunk(b"tRNS", trns))
    if exif is not None:
        out.append(_chunk(b"eXIf", _exif_block(exif)))
    if interlace:
        raw = b""
        for y0, x0, dy, dx in _ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.size:
                raw += _pack_rows(sub.reshape(sub.shape[0], -1), depth)
    else:
        raw = _pack_rows(samples.reshape(h, -1), depth)
    z = zlib.compress(raw, level)
    step = idat_size or len(z)
    out += [_chunk(b"IDAT", z[i:i + step]) for i in range(0, len(z), step)]
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def png_files(real=True, small=False):
    """(name, bytes): every colour type and depth over a few photos and noise."""
    imgs = photos(real)
    names = ["noise-64x48", "odd-7x13", "tiny-1x1", "gradient-97x131"] + [
        k for k in ("astronaut", "camera", "coffee", "logo") if k in imgs]
    if small:
        names = names[:3] + names[-1:]
    rng = np.random.default_rng(1)
    for name in names:
        a = imgs[name][:160, :200]  # keep the suite fast
        c, g = rgb(a), gray(a)
        h, w = g.shape
        alpha = imgs[name][:160, :200, 3] if a.ndim == 3 and a.shape[2] == 4 else ((np.arange(h * w) * 7) % 256).reshape(h, w)
        for il in (False, True):
            s = "-interlaced" if il else ""
            yield f"{name}-rgb8{s}", png(c, 2, 8, interlace=il)
            yield f"{name}-rgba8{s}", png(np.dstack([c, alpha]), 6, 8, interlace=il)
            yield f"{name}-gray8{s}", png(g, 0, 8, interlace=il)
            yield f"{name}-graya8{s}", png(np.dstack([g, alpha]), 4, 8, interlace=il)
            yield f"{name}-rgb16{s}", png(c.astype(np.uint16) * 257 + rng.integers(0, 200, c.shape), 2, 16,
                                          interlace=il)
            yield f"{name}-gray16{s}", png(g.astype(np.uint16) * 256 + 3, 0, 16, interlace=il)
            yield f"{name}-rgba16{s}", png(np.dstack([c, alpha]).astype(np.uint16) * 257, 6, 16, interlace=il)
            yield f"{name}-graya16{s}", png(np.dstack([g, alpha]).astype(np.uint16) * 257, 4, 16, interlace=il)
            for depth in (1, 2, 4):
                yield f"{name}-gray{depth}{s}", png(g >> (8 - depth), 0, depth, interlace=il)
            pal = rng.integers(0, 256, (16, 3))
            idx = (g >> 4).astype(np.uint8)
            yield f"{name}-palette8{s}", png(idx, 3, 8, palette=pal, interlace=il)
            yield f"{name}-palette8-trns{s}", png(idx, 3, 8, palette=pal, trns=bytes(range(0, 256, 16)), interlace=il)
            for depth in (1, 2, 4):
                yield f"{name}-palette{depth}{s}", png(idx >> (4 - depth) if depth < 4 else idx, 3, depth,
                                                       palette=pal[: 1 << depth], interlace=il)
