"""encode_jpeg / encode_png: the same bytes as torchvision, round trips, files."""
import numpy as np
import pytest
import torch
import torchvision.io as tio

import io_images
import torchvision_native as tvn

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

PHOTOS = io_images.photos()


def chw(a):
    return torch.from_numpy(io_images.rgb(a)).permute(2, 0, 1).contiguous()


def psnr(a, b):
    mse = ((a.double() - b.double()) ** 2).mean().item()
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.parametrize("name", list(PHOTOS))
@pytest.mark.parametrize("quality", [1, 10, 50, 75, 90, 100])
def test_encode_jpeg_bytes_equal_torchvision(name, quality):
    x = chw(PHOTOS[name])
    assert torch.equal(tvn.io.encode_jpeg(x, quality=quality), tio.encode_jpeg(x, quality=quality))
    assert torch.equal(tvn.io.encode_jpeg(x[:1], quality=quality), tio.encode_jpeg(x[:1], quality=quality))


@pytest.mark.parametrize("name", ["astronaut", "coffee", "camera", "chelsea"])
def test_encode_jpeg_round_trip_psnr(name):
    x = chw(PHOTOS[name])
    for quality, floor in ((50, 27), (90, 32), (100, 38)):
        back = tio.decode_jpeg(tvn.io.encode_jpeg(x, quality=quality))
        assert back.shape == x.shape and psnr(back, x) > floor, (quality, psnr(back, x))


def test_encode_jpeg_strided_and_list_inputs():
    x = chw(PHOTOS["astronaut"])
    hwc = x.permute(1, 2, 0).contiguous().permute(2, 0, 1)  # torchvision's decoder layout
    assert torch.equal(tvn.io.encode_jpeg(hwc), tio.encode_jpeg(x))
    flipped = x.flip(-1)  # negative strides through to_native's copy
    assert torch.equal(tvn.io.encode_jpeg(flipped), tio.encode_jpeg(flipped.contiguous()))
    outs = tvn.io.encode_jpeg([x, x[:1]], quality=80)
    assert [torch.equal(o, tio.encode_jpeg(i, quality=80)) for o, i in zip(outs, [x, x[:1]])] == [True, True]


@pytest.mark.parametrize("name", list(PHOTOS))
@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_encode_png_bytes_equal_torchvision_and_lossless(name, level):
    x = chw(PHOTOS[name])
    for img in (x, x[:1]):
        ours = tvn.io.encode_png(img, compression_level=level)
        assert torch.equal(ours, tio.encode_png(img, compression_level=level))
        assert torch.equal(tio.decode_png(ours), img)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16])
def test_encode_png_beyond_torchvision_round_trips(channels, dtype):
    g = torch.Generator().manual_seed(channels)
    hi = 256 if dtype == torch.uint8 else 65536
    x = torch.randint(0, hi, (channels, 37, 53), generator=g, dtype=torch.int32).to(dtype)
    back = tvn.io.decode_png(tvn.io.encode_png(x))
    assert back.dtype == dtype and torch.equal(back, x)
    assert torch.equal(tio.decode_png(tvn.io.encode_png(x)), x)


def test_numpy_encode_gives_numpy():
    x = chw(PHOTOS["coffee"]).numpy()
    out = tvn.io.encode_png(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    assert np.array_equal(tvn.io.decode_png(out), x)


def test_encode_argument_errors():
    x = chw(PHOTOS["coffee"])
    for q in (0, 101, -5):
        with pytest.raises(ValueError, match="Image quality should be a positive number between 1 and 100"):
            tvn.io.encode_jpeg(x, quality=q)
    with pytest.raises(ValueError, match="requires at least one input tensor"):
        tvn.io.encode_jpeg([])
    for level in (-1, 10):
        with pytest.raises(ValueError, match="Compression level should be between 0 and 9"):
            tvn.io.encode_png(x, compression_level=level)
    with pytest.raises(ValueError, match="The number of channels should be 1 or 3, got: 2"):
        tvn.io.encode_jpeg(x[:2])
    with pytest.raises(ValueError, match="The number of channels should be 1 to 4, got: 5"):
        tvn.io.encode_png(torch.zeros(5, 4, 4, dtype=torch.uint8))
    with pytest.raises(TypeError, match="Input tensor dtype should be uint8"):
        tvn.io.encode_jpeg(x.float())
    with pytest.raises(TypeError, match="dtype should be uint8 or uint16"):
        tvn.io.encode_png(x.float())
    with pytest.raises(ValueError, match="Input data should be a 3-dimensional tensor"):
        tvn.io.encode_jpeg(x[0])
    with pytest.raises(ValueError, match="zero size"):
        tvn.io.encode_png(torch.zeros(3, 0, 4, dtype=torch.uint8))


def test_files_round_trip(tmp_path):
    x = chw(PHOTOS["chelsea"])
    tvn.io.write_png(x, tmp_path / "a.png")
    tvn.io.write_jpeg(x, str(tmp_path / "a.jpg"), quality=90)
    assert torch.equal(tvn.io.read_file(tmp_path / "a.png"), tio.read_file(str(tmp_path / "a.png")))
    assert torch.equal(tvn.io.read_image(tmp_path / "a.png"), x)
    assert torch.equal(tvn.io.read_image(tmp_path / "a.jpg"), tio.read_image(str(tmp_path / "a.jpg")))
    data = torch.arange(256, dtype=torch.uint8)
    tvn.io.write_file(tmp_path / "raw", data)
    assert (tmp_path / "raw").read_bytes() == bytes(range(256))
    assert torch.equal(tvn.io.read_file(str(tmp_path / "raw")), data)


def test_file_errors(tmp_path):
    with pytest.raises(RuntimeError, match=r"\[Errno 2\] No such file or directory: '.*missing'"):
        tvn.io.read_file(tmp_path / "missing")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(RuntimeError, match="Expected a non empty file"):
        tvn.io.read_file(tmp_path / "empty")
    with pytest.raises(RuntimeError, match="is a directory"):
        tvn.io.read_file(tmp_path)
    with pytest.raises(TypeError, match="Input tensor dtype should be uint8"):
        tvn.io.write_file(tmp_path / "x", torch.zeros(4, dtype=torch.int32))
    with pytest.raises(ValueError, match="Input data should be a 1-dimensional tensor"):
        tvn.io.write_file(tmp_path / "x", torch.zeros(2, 2, dtype=torch.uint8))
    with pytest.raises(RuntimeError, match="No such file or directory"):
        tvn.io.write_file(tmp_path / "no" / "dir", torch.zeros(2, dtype=torch.uint8))
