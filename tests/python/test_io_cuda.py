"""GPU JPEG decode (nvJPEG) against torchvision's CUDA decode_jpeg: the same nvJPEG
paths (hardware batch for baseline files, GPU-hybrid for the rest), so the same pixels.
Skipped without a GPU."""
import pytest
import torch
import torchvision.io as tio

import io_images
import torchvision_native as tvn
from conftest import requires_cuda

pytestmark = [pytest.mark.cuda, requires_cuda]
MODES = (tio.ImageReadMode.UNCHANGED, tio.ImageReadMode.GRAY, tio.ImageReadMode.RGB)


@pytest.fixture(scope="module")
def corpus():
    # nvJPEG has no CMYK decoder (torchvision raises there too).
    return [(name, torch.frombuffer(bytearray(data), dtype=torch.uint8))
            for name, data in io_images.jpeg_files(small=True) if "cmyk" not in name]


def test_the_gpu_build_has_nvjpeg():
    assert tvn._C.has_nvjpeg()


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_each_file_matches_torchvision(corpus, mode):
    for name, data in corpus:
        out = tvn.io.decode_jpeg(data, mode=mode, device="cuda")
        ref = tio.decode_jpeg(data, mode=mode, device="cuda")
        assert out.is_cuda and out.dtype == torch.uint8 and out.is_contiguous(), name
        assert torch.equal(out, ref), name


@pytest.mark.parametrize("mode", (tio.ImageReadMode.UNCHANGED, tio.ImageReadMode.RGB), ids=str)
def test_batch_matches_torchvision(corpus, mode):
    data = [d for _, d in corpus] * 3
    outs = tvn.io.decode_jpeg(data, mode=mode, device="cuda")
    refs = tio.decode_jpeg(data, mode=mode, device="cuda")
    assert len(outs) == len(refs)
    assert all(torch.equal(o, r) for o, r in zip(outs, refs))


def test_side_stream_and_second_call(corpus):
    name, data = corpus[0]
    ref = tio.decode_jpeg(data, device="cuda")
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        out = tvn.io.decode_jpeg(data, device="cuda")
        again = tvn.io.decode_jpeg([data, data], device="cuda:0")
    stream.synchronize()
    assert torch.equal(out, ref) and all(torch.equal(a, ref) for a in again)


def test_bad_input_raises(corpus):
    _, data = corpus[0]
    with pytest.raises(RuntimeError):
        tvn.io.decode_jpeg(data[: len(data) // 3].clone()[:16], device="cuda")
    with pytest.raises(RuntimeError):
        tvn.io.decode_jpeg(torch.zeros(100, dtype=torch.uint8), device="cuda")
    with pytest.raises(ValueError, match="UNCHANGED, GRAY and RGB"):
        tvn.io.decode_jpeg(data, mode=tio.ImageReadMode.RGB_ALPHA, device="cuda")
    # still decodes after errors
    assert torch.equal(tvn.io.decode_jpeg(data, device="cuda"), tio.decode_jpeg(data, device="cuda"))
