"""tvn.ops.roi_align against torchvision.ops.roi_align on every CPU ISA tier.

tvops keeps torchvision's CPU arithmetic and summation order, so float32 and float64
results (forward and input gradient) must be identical, not just close.
"""
import numpy as np
import pytest
import torch
import torchvision

import torchvision_native as tvn
from boxes import feature_map, random_rois




CONFIGS = [  # (output_size, spatial_scale, sampling_ratio, aligned)
    ((7, 7), 0.25, 2, True), ((7, 7), 0.25, 2, False), ((7, 7), 0.25, -1, True), ((3, 5), 0.25, 0, False),
    ((1, 1), 0.5, 1, True), ((5, 4), 0.125, 3, False), ((2, 2), 1.0, -1, False),
]


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
@pytest.mark.parametrize("config", CONFIGS)
def test_forward_identical_to_torchvision(isa, config, dtype):
    output_size, scale, sr, aligned = config
    x, rois = feature_map(dtype=dtype), random_rois(150, dtype=dtype)
    ref = torchvision.ops.roi_align(x, rois, output_size, scale, sr, aligned)
    out = tvn.ops.roi_align(x, rois, output_size, scale, sr, aligned)
    assert out.dtype == dtype and out.shape == ref.shape
    assert torch.equal(out, ref)


@pytest.mark.parametrize("config", CONFIGS[:4])
def test_backward_identical_to_torchvision(isa, config):
    output_size, scale, sr, aligned = config
    x, rois = feature_map(), random_rois(120)
    grad = torch.randn(120, x.shape[1], *output_size, generator=torch.Generator().manual_seed(3))
    grads = []
    for op in (torchvision.ops.roi_align, tvn.ops.roi_align):
        xr = x.clone().requires_grad_()
        op(xr, rois, output_size, scale, sr, aligned).backward(grad)
        grads.append(xr.grad)
    assert torch.equal(grads[1], grads[0])


@pytest.mark.parametrize("aligned", (True, False))
def test_gradcheck_float64(aligned):
    x = feature_map(1, 3, 9, 11, dtype=torch.float64).requires_grad_()
    rois = torch.tensor([[0, 1.0, 1.5, 20.0, 30.0], [0, 0.5, 0.5, 3.0, 2.0], [0, 10.0, 5.0, 40.0, 36.0]],
                        dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: tvn.ops.roi_align(t, rois, (3, 2), 0.25, 1, aligned), (x,))


def test_boxes_as_list_of_tensors():
    x = feature_map()
    boxes = [random_rois(20, seed=5)[:, 1:], random_rois(7, seed=6)[:, 1:]]
    ref = torchvision.ops.roi_align(x, boxes, 7, 0.25, 2, True)
    assert torch.equal(tvn.ops.roi_align(x, boxes, 7, 0.25, 2, True), ref)


def test_degenerate_rois():
    x = feature_map()
    rois = torch.tensor([[0, 5, 5, 5, 5], [1, 30, 30, 10, 10], [0, -50, -50, -40, -40], [1, 500, 500, 900, 900],
                         [0, -20, -20, 200, 200], [1, 0, 0, 0.1, 0.1]], dtype=torch.float32)
    for aligned in (True, False):
        for sr in (-1, 2):
            ref = torchvision.ops.roi_align(x, rois, 4, 0.25, sr, aligned)
            assert torch.equal(tvn.ops.roi_align(x, rois, 4, 0.25, sr, aligned), ref)


def test_channels_last_and_strided_inputs_give_the_same_result():
    x, rois = feature_map(c=32), random_rois(50)
    ref = torchvision.ops.roi_align(x, rois, 7, 0.25, 2, True)
    assert torch.equal(tvn.ops.roi_align(x.contiguous(memory_format=torch.channels_last), rois, 7, 0.25, 2, True), ref)
    wide = torch.zeros(2, 32, 23, 62)
    wide[..., ::2] = x
    assert torch.equal(tvn.ops.roi_align(wide[..., ::2], rois, 7, 0.25, 2, True), ref)


@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16))
def test_half_inputs_compute_in_float32(isa, dtype):
    # 40 channels: one 32-channel block of the avx512bf16 dot-product kernel and a tail.
    x, rois = feature_map(c=40, dtype=dtype), random_rois(40, dtype=dtype)
    out = tvn.ops.roi_align(x, rois, 7, 0.25, 2, True)
    assert out.dtype == dtype
    exact = torchvision.ops.roi_align(x.float(), rois.float(), 7, 0.25, 2, True)
    if dtype == torch.bfloat16 and isa == "avx512bf16":
        # vdpbf16ps with 16-bit weights (two bf16 halves): the float32 sums move by ~1e-5,
        # which changes the bfloat16 rounding only near ties.
        assert torch.allclose(out.float(), exact, rtol=2**-8, atol=1e-4)
        assert (out != exact.to(dtype)).float().mean() <= 0.01
    else:
        assert torch.equal(out, exact.to(dtype))


def test_empty_rois_and_threads(num_threads):
    x = feature_map()
    empty = tvn.ops.roi_align(x, torch.zeros(0, 5), (7, 7), 0.25, 2, True)
    assert empty.shape == (0, 13, 7, 7)
    rois = random_rois(200)
    results = []
    for t in (1, 2):
        tvn.set_num_threads(t)
        xr = x.clone().requires_grad_()
        out = tvn.ops.roi_align(xr, rois, 7, 0.25, 2, True)
        out.sum().backward()
        results.append((out, xr.grad))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_numpy_in_numpy_out():
    x, rois = feature_map(), random_rois(30)
    out = tvn.ops.roi_align(x.numpy(), rois.numpy(), 7, 0.25, 2, True)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert np.array_equal(out, torchvision.ops.roi_align(x, rois, 7, 0.25, 2, True).numpy())


def test_bad_input():
    x, rois = feature_map(), random_rois(5)
    with pytest.raises(AssertionError, match=r"Tensor\[K, 5\]"):
        tvn.ops.roi_align(x, rois[:, :4], 7)
    with pytest.raises(AssertionError, match=r"List\[Tensor\[L, 4\]\]"):
        tvn.ops.roi_align(x, [rois], 7)
    bad = rois.clone()
    bad[2, 0] = 2  # only two images
    with pytest.raises(RuntimeError, match=r"rois\[2, 0\] = 2 is not a batch index"):
        tvn.ops.roi_align(x, bad, 7)
    bad[2, 0] = float("nan")
    with pytest.raises(RuntimeError, match="not a batch index"):
        tvn.ops.roi_align(x, bad, 7)
    with pytest.raises(RuntimeError, match="same type"):
        tvn.ops.roi_align(x, rois.double(), 7)
    with pytest.raises(RuntimeError, match="4d tensor"):
        tvn.ops.roi_align(x[0], rois, 7)
    with pytest.raises(RuntimeError, match="output size must be positive"):
        tvn.ops.roi_align(x, rois, (0, 7))


def test_nan_and_huge_rois_give_clear_results():
    x = feature_map()
    nan_roi = torch.tensor([[0, float("nan"), 1.0, 5.0, 9.0]])
    out = tvn.ops.roi_align(x, nan_roi, 3, 0.25, -1, True)  # torchvision: undefined behaviour here
    assert torch.equal(out, torch.zeros_like(out))
    huge = torch.tensor([[0, 0.0, 0.0, 1e12, 1e12]])
    with pytest.raises(RuntimeError, match="samples per bin side"):
        tvn.ops.roi_align(x, huge, 3, 0.25, -1, True)
    assert torch.isfinite(tvn.ops.roi_align(x, huge, 3, 0.25, 2, True)).all()  # fixed sampling is fine


@pytest.mark.parametrize("dtype", (torch.float32, torch.float16, torch.bfloat16))
def test_channels_last_copy_of_every_width(isa, dtype):
    # NCHW maps are copied to channels-last by 16x16 / 8x8 register tiles: sizes that
    # are not multiples of the tiles exercise the edges.
    x = torch.randn(2, 37, 19, 23, generator=torch.Generator().manual_seed(3)).to(dtype)
    rois = torch.tensor([[0, 1.0, 2, 60, 70], [1, 5, 5, 30, 40], [1, -9, 3, 90, 20]]).to(dtype)
    nchw = tvn.ops.roi_align(x, rois, 5, 0.25, 2, True)
    assert torch.equal(nchw, tvn.ops.roi_align(x.contiguous(memory_format=torch.channels_last), rois, 5, 0.25, 2, True))
