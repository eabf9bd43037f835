"""Hostile and malformed input: every case raises a clear error, none crashes.

torchvision 0.29.2 kills the process (SIGSEGV) on PNGs whose compressed IDAT data
is corrupt; those files are only ever given to torchvision in a subprocess here.
"""
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch
import torchvision

import io_images
import torchvision_native as tvn

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

PHOTO = io_images.rgb(io_images.photos()["astronaut"])[:200, :240]
JPEG = io_images.pil_jpeg(PHOTO, quality=90)
PROGRESSIVE = io_images.pil_jpeg(PHOTO, quality=90, progressive=True)
PNG = io_images.png(PHOTO, 2, 8)
DECODERS = [tvn.io.decode_jpeg, tvn.io.decode_png, tvn.io.decode_image]


def t(b):
    return torch.frombuffer(bytearray(b), dtype=torch.uint8) if len(b) else torch.empty(0, dtype=torch.uint8)


def chunks(png):
    """[(offset, type, data)] of a PNG's chunks."""
    out, at = [], 8
    while at + 8 <= len(png):
        n = struct.unpack(">I", png[at:at + 4])[0]
        out.append((at, png[at + 4:at + 8], png[at + 8:at + 8 + n]))
        at += 12 + n
    return out


def corrupt_idat(png, seed):
    """Mutates a few bytes inside the compressed IDAT data and fixes the CRC, so that
    only zlib / the filters see the damage (what a new user's 'flip some bytes' does
    once CRCs are recomputed, and what a bit flip on disk does without)."""
    rng = np.random.default_rng(seed)
    data = bytearray(png)
    at, kind, payload = next(c for c in chunks(png) if c[1] == b"IDAT")
    body = bytearray(payload)
    for i in rng.integers(2, len(body), 4):
        body[i] ^= int(rng.integers(1, 256))
    data[at + 8:at + 8 + len(body)] = body
    data[at + 8 + len(body):at + 12 + len(body)] = struct.pack(">I", zlib.crc32(kind + bytes(body)) & 0xFFFFFFFF)
    return bytes(data)


@pytest.mark.parametrize("decode", DECODERS)
def test_argument_checks(decode):
    with pytest.raises(ValueError, match="Expected a non empty 1-dimensional tensor"):
        decode(torch.empty(0, dtype=torch.uint8))
    with pytest.raises(TypeError, match="Expected a torch.uint8 tensor, got float32"):
        decode(t(JPEG).float())
    with pytest.raises(ValueError, match="Expected a non empty 1-dimensional tensor"):
        decode(t(JPEG)[:1000].reshape(10, 100))
    with pytest.raises(ValueError, match="must be contiguous"):
        decode(t(JPEG)[::2])
    with pytest.raises(ValueError):
        decode(b"")


def test_messages_name_op_and_argument():
    with pytest.raises(ValueError, match=r"^decode_png: input: Content is not png!"):
        tvn.io.decode_png(t(JPEG))
    with pytest.raises(ValueError, match=r"^decode_png: input: Content is too small for png!"):
        tvn.io.decode_png(t(PNG[:7]))
    with pytest.raises(ValueError, match=r"^decode_jpeg: input: Not a JPEG file: starts with 0x89 0x50"):
        tvn.io.decode_jpeg(t(PNG))
    with pytest.raises(tvn.TvopsValueError):  # both a RuntimeError (torchvision raises those) and a ValueError
        tvn.io.decode_png(t(JPEG))


def test_decode_image_unsupported_formats():
    with pytest.raises(ValueError, match=r"Unsupported image file. Only jpeg and png are currently supported "
                                         r"\(the data starts with 00 01 02 03\)"):
        tvn.io.decode_image(t(bytes(range(40))))
    with pytest.raises(ValueError, match="fewer than 4 bytes"):
        tvn.io.decode_image(t(b"\x01\x02"))
    with pytest.raises(RuntimeError, match="GIF is not supported by tvops"):
        tvn.io.decode_image(t(b"GIF89a" + bytes(30)))
    with pytest.raises(RuntimeError, match="WEBP is not supported"):
        tvn.io.decode_image(t(b"RIFF\0\0\0\0WEBPVP8 " + bytes(30)))


@pytest.mark.parametrize("data", [JPEG, PROGRESSIVE], ids=["baseline", "progressive"])
def test_truncated_jpeg_raises(data):
    for cut in list(range(1, 700, 37)) + list(range(700, len(data), max(1, len(data) // 40))) + [len(data) - 1]:
        with pytest.raises(ValueError, match="decode_jpeg: input:"):
            tvn.io.decode_jpeg(t(data[:cut]))
        try:  # a crop near the top may need none of the missing data
            out = tvn.io.decode_jpeg(t(data[:cut]), min_size=20, crop=(10, 10, 100, 100))
            assert out.shape[1] >= 20 and out.shape[2] >= 20
        except ValueError as e:
            assert str(e).startswith("decode_jpeg: input:")


def test_truncated_png_raises():
    for cut in list(range(8, 120, 7)) + list(range(120, len(PNG), max(1, len(PNG) // 40))) + [len(PNG) - 13]:
        with pytest.raises(ValueError, match="decode_png: input:"):
            tvn.io.decode_png(t(PNG[:cut]))


@pytest.mark.parametrize("seed", range(12))
def test_corrupt_idat_raises(seed):
    bad = corrupt_idat(PNG, seed)
    try:
        out = tvn.io.decode_png(t(bad))
    except ValueError as e:
        assert str(e).startswith("decode_png: input:")
    else:  # the damage may still inflate to a valid (wrong) image: then the shape holds
        assert out.shape == (3, 200, 240)


def test_corrupt_idat_crashes_torchvision_but_not_tvops():
    """Shows the regression tvops avoids: torchvision 0.29.2 dies with SIGSEGV where 0.26
    raised. Run in a subprocess; only asserted for the version known to crash."""
    bad = next(b for b in (corrupt_idat(PNG, s) for s in range(50)) if _raises(b))
    code = ("import sys, torch, torchvision.io as io\n"
            "data = torch.frombuffer(bytearray(sys.stdin.buffer.read()), dtype=torch.uint8)\n"
            "try:\n    io.decode_png(data)\nexcept RuntimeError:\n    sys.exit(3)\n")
    proc = subprocess.run([sys.executable, "-c", code], input=bad, capture_output=True, timeout=120)
    if torchvision.__version__.startswith("0.29.2"):
        assert proc.returncode == -11, (proc.returncode, proc.stderr[-500:])
    with pytest.raises(ValueError, match="decode_png: input:"):
        tvn.io.decode_png(t(bad))


def _raises(b):
    try:
        tvn.io.decode_png(t(b))
    except ValueError:
        return True
    return False


def test_corrupt_jpeg_markers():
    data = bytearray(JPEG)
    sof = data.index(b"\xff\xc0")
    for pos, value, message in [(sof + 1, 0xC3, "Unsupported JPEG process: SOF type 0xc3"),
                                (sof + 4, 0xFF, "Unsupported JPEG data precision 255"),
                                (0, 0x00, "Not a JPEG file: starts with 0x00 0xd8"),
                                (1, 0x00, "Not a JPEG file: starts with 0xff 0x00")]:
        bad = bytearray(data)
        bad[pos] = value
        with pytest.raises(ValueError, match="decode_jpeg: input: " + message):
            tvn.io.decode_jpeg(t(bytes(bad)))
    bad = bytearray(data)
    bad[2] = 0  # garbage before a marker: a libjpeg warning, decoded as torchvision does
    assert torch.equal(tvn.io.decode_jpeg(t(bytes(bad))), torchvision.io.decode_jpeg(t(bytes(bad))))
    dht = data.index(b"\xff\xc4")
    bad = bytearray(data)
    bad[dht + 5:dht + 21] = b"\xff" * 16  # a Huffman table claiming too many codes
    with pytest.raises(ValueError, match="Bogus Huffman table definition"):
        tvn.io.decode_jpeg(t(bytes(bad)))


def test_corrupt_entropy_data_decodes_like_torchvision():
    """libjpeg warns and goes on; torchvision does too, and the pixels agree."""
    data = bytearray(JPEG)
    sos = data.index(b"\xff\xda")
    for i in range(sos + 200, len(data) - 100, 997):
        data[i] = 0x55
    ours = tvn.io.decode_jpeg(t(bytes(data)))
    assert torch.equal(ours, torchvision.io.decode_jpeg(t(bytes(data))))


def _jpeg_with_size(h, w):
    data = bytearray(JPEG)
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def _png_with_size(h, w):
    data = bytearray(PNG)
    data[16:24] = struct.pack(">II", w, h)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def test_zero_dimensions():
    with pytest.raises(ValueError, match="decode_png: input:"):
        tvn.io.decode_png(t(_png_with_size(0, 240)))
    with pytest.raises(ValueError, match="decode_jpeg: input:"):
        tvn.io.decode_jpeg(t(_jpeg_with_size(200, 0)))


def test_decompression_bombs_refused():
    assert tvn.io.max_image_pixels() == 2 ** 28
    with pytest.raises(ValueError, match=r"65500 x 65500 pixels exceeds the limit of 268435456"):
        tvn.io.decode_jpeg(t(_jpeg_with_size(65500, 65500)))
    with pytest.raises(ValueError, match="decompression bomb"):
        tvn.io.decode_png(t(_png_with_size(100000, 100000)))
    with pytest.raises(ValueError, match="exceeds the limit"):
        tvn.io.decode_images([t(JPEG), t(_png_with_size(2 ** 31 - 1, 2 ** 31 - 1))])
    try:
        tvn.io.set_max_image_pixels(200 * 240 - 1)
        with pytest.raises(ValueError, match="exceeds the limit of 47999"):
            tvn.io.decode_jpeg(t(JPEG))
        with pytest.raises(ValueError, match="exceeds the limit"):
            tvn.io.decode_png(t(PNG))
        tvn.io.set_max_image_pixels(0)  # no limit
        assert tvn.io.decode_jpeg(t(JPEG)).shape == (3, 200, 240)
    finally:
        tvn.io.set_max_image_pixels(2 ** 28)


def test_too_many_progressive_scans():
    """A progressive file repeating a scan thousands of times is refused, not decoded for minutes."""
    data = PROGRESSIVE
    last_sos = data.rindex(b"\xff\xda")
    end = data.rindex(b"\xff\xd9")
    scan = data[last_sos:end]
    bomb = data[:end] + scan * 1100 + b"\xff\xd9"
    with pytest.raises(ValueError, match="more than 1000 progressive scans"):
        tvn.io.decode_jpeg(t(bomb))


def test_no_leak_on_error_paths():
    """RSS stays flat while thousands of decodes fail at every stage (ASan's leak checker
    covers the C++ side in the asan preset)."""
    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    bad = [t(JPEG[:len(JPEG) // 2]), t(PNG[:len(PNG) // 2]), t(corrupt_idat(PNG, 3)), t(_jpeg_with_size(65500, 65500)),
           t(PROGRESSIVE[:len(PROGRESSIVE) - 50])]

    def run():
        for _ in range(150):
            for b in bad:
                try:
                    tvn.io.decode_image(b)
                except (ValueError, RuntimeError):
                    pass
    run()
    before = rss_mb()
    run()
    assert rss_mb() - before < 8


@pytest.mark.parametrize("threads", [1, 2])
def test_png_image_data_framing(threads, num_threads):
    """tvops inflates 8-bit PNGs itself (png_pipeline.cpp): the IDAT framing cases."""
    tvn.set_num_threads(threads)
    ref = torch.from_numpy(PHOTO).permute(2, 0, 1)
    for size in (1, 7, 1000):
        assert torch.equal(tvn.io.decode_png(t(io_images.png(PHOTO, 2, 8, idat_size=size))), ref)
    good = io_images.png(PHOTO, 2, 8, idat_size=5000)
    parts = chunks(good)
    idats = [c for c in parts if c[1] == b"IDAT"]
    # An empty IDAT chunk in the middle is valid.
    at = idats[1][0]
    empty = good[:at] + io_images._chunk(b"IDAT", b"") + good[at:]
    assert torch.equal(tvn.io.decode_png(t(empty)), ref)
    # A wrong CRC, a missing last IDAT, a foreign chunk before the data ends.
    bad_crc = bytearray(good)
    bad_crc[idats[2][0] + 8 + 10] ^= 0x40
    cut = good[:idats[-1][0]] + good[idats[-1][0] + 12 + len(idats[-1][2]):]
    foreign = good[:idats[1][0]] + io_images._chunk(b"tEXt", b"a\0b") + good[idats[1][0]:]
    for data, message in [(bytes(bad_crc), "CRC error"), (cut, "Not enough image data"),
                          (foreign, "Not enough image data"), (good[:idats[3][0] + 20], "truncated")]:
        with pytest.raises(ValueError, match=message):
            tvn.io.decode_png(t(data))
    # Every filter type, and a bad one.
    for level in (0, 1, 9):
        assert torch.equal(tvn.io.decode_png(t(io_images.png(PHOTO, 2, 8, level=level))), ref)
    raw = bytearray(zlib.decompress(b"".join(c[2] for c in idats)))
    raw[(PHOTO.shape[1] * 3 + 1) * 5] = 9  # row 5's filter byte
    bad_filter = io_images.png(PHOTO, 2, 8)
    z = zlib.compress(bytes(raw))
    head = bad_filter[:chunks(bad_filter)[1][0]]
    data = head + io_images._chunk(b"IDAT", z) + io_images._chunk(b"IEND", b"")
    with pytest.raises(ValueError, match="bad adaptive filter value"):
        tvn.io.decode_png(t(data))


@pytest.mark.parametrize("name,data", [(n, d) for n, d in io_images.png_files(small=True)
                                       if "interlaced" not in n and ("8" in n and "palette" not in n)])
def test_png_one_and_two_threads_agree(name, data, num_threads):
    ref = torchvision.io.decode_png(t(data))
    for threads in (1, 2):
        tvn.set_num_threads(threads)
        assert torch.equal(tvn.io.decode_png(t(data)), ref)
        assert all(torch.equal(o, ref) for o in tvn.io.decode_images([t(data)] * 3))
