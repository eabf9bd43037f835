"""tvn.ops.roi_pool against torchvision.ops.roi_pool on every CPU ISA tier.

tvops keeps torchvision's CPU arithmetic and scan order (round() of the scaled corners,
+1 inclusive extents, floor/ceil bins clipped to [0, H] x [0, W], a strict `>` scan in
row-major order starting from -FLT_MAX, so the first maximum wins and NaNs are never
picked), so float32 and float64 results (forward and input gradient) must be identical.
"""
import numpy as np
import pytest
import torch
import torchvision

import torchvision_native as tvn
from boxes import feature_map, random_rois

FLOATS = (torch.float32, torch.float64)




def random_grad(k, c, output_size, seed=3, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, c, *output_size, generator=g, dtype=torch.float64).to(dtype)


def input_grads(ops, x, rois, grad, *args):
    """The input gradient of each op for the same (x, rois, grad)."""
    grads = []
    for op in ops:
        xr = x.clone().requires_grad_()
        op(xr, rois, *args).backward(grad)
        grads.append(xr.grad)
    return grads


BOTH = (torchvision.ops.roi_pool, tvn.ops.roi_pool)

CONFIGS = [  # (output_size, spatial_scale)
    ((7, 7), 0.25), ((3, 5), 0.25), ((1, 1), 0.5), ((2, 2), 1.0), ((5, 4), 0.125), ((6, 6), 0.5), ((4, 3), 1.0),
]

# Tiny, inverted, fully outside, partly outside, covering, and exactly on the border of
# the 23 x 31 map at scale 1/4 (x up to 124 = 31 / 0.25, y up to 92 = 23 / 0.25); corners
# whose scaled value is exactly k + 0.5 test round-half-away-from-zero (also at -0.5).
DEGENERATE = [
    [0, 5, 5, 5, 5], [1, 30, 30, 10, 10], [0, 40, 8, 20, 60], [0, -50, -50, -40, -40], [1, 500, 500, 900, 900],
    [0, -20, -20, 200, 200], [1, 0, 0, 0.1, 0.1], [0, 0, 0, 124, 92], [1, 120, 88, 124, 92], [0, 124, 92, 124, 92],
    [1, 123.9, 91.9, 130, 100], [0, 120, 0, 200, 92], [1, -2, -2, 2, 2], [0, 2, 2, 6, 6], [1, 10, 14, 18, 22],
    [0, -6, -6, -2, -2], [1, 118, 86, 122, 90], [0, -4, -4, 0, 0], [1, 126, 94, 130, 98], [0, 0.5, 0.5, 3.5, 3.5],
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("config", CONFIGS)
def test_forward_identical_to_torchvision(isa, config, dtype):
    output_size, scale = config
    x, rois = feature_map(dtype=dtype), random_rois(150, dtype=dtype)
    ref = torchvision.ops.roi_pool(x, rois, output_size, scale)
    out = tvn.ops.roi_pool(x, rois, output_size, scale)
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.shape == ref.shape
    assert torch.equal(out, ref)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("config", CONFIGS)
def test_backward_identical_to_torchvision(isa, config, dtype):
    output_size, scale = config
    x, rois = feature_map(dtype=dtype), random_rois(120, dtype=dtype)
    grad = random_grad(120, x.shape[1], output_size, dtype=dtype)
    ref, out = input_grads(BOTH, x, rois, grad, output_size, scale)
    assert out.dtype == dtype and out.shape == x.shape
    assert torch.equal(out, ref)


def test_gradcheck_float64():
    # Random values: no ties inside a bin, so the max is differentiable; RoIs inside the map.
    x = feature_map(1, 3, 9, 11, seed=7, dtype=torch.float64).requires_grad_()
    rois = torch.tensor([[0, 1.0, 1.5, 20.0, 30.0], [0, 0.5, 0.5, 3.0, 2.0], [0, 10.0, 5.0, 40.0, 34.0],
                         [0, 4.0, 4.0, 42.0, 33.0]], dtype=torch.float64)
    for output_size in ((3, 2), (2, 2), (1, 1)):
        assert torch.autograd.gradcheck(lambda t: tvn.ops.roi_pool(t, rois, output_size, 0.25), (x,))


@pytest.mark.parametrize("dtype", FLOATS)
def test_degenerate_and_border_rois(isa, dtype):
    x = feature_map(dtype=dtype)
    rois = torch.tensor(DEGENERATE, dtype=dtype)
    grad = random_grad(len(rois), x.shape[1], (3, 3), dtype=dtype)
    for scale in (0.25, 0.5, 1.0):
        ref = torchvision.ops.roi_pool(x, rois, 3, scale)
        assert torch.equal(tvn.ops.roi_pool(x, rois, 3, scale), ref)
        ref_grad, grad_ = input_grads(BOTH, x, rois, grad, 3, scale)
        assert torch.equal(grad_, ref_grad)


@pytest.mark.parametrize("dtype", FLOATS)
def test_ties_pick_the_first_maximum(isa, dtype):
    # Constant and coarsely quantised maps: many equal values per bin; the gradient shows
    # which one was picked (the first in row-major order, as torchvision's strict `>`).
    rois = random_rois(60, dtype=dtype)
    grad = random_grad(60, 13, (4, 4), dtype=dtype)
    for x in (torch.full((2, 13, 23, 31), 1.5, dtype=dtype), (feature_map(dtype=dtype) * 2).round()):
        ref = torchvision.ops.roi_pool(x, rois, 4, 0.25)
        assert torch.equal(tvn.ops.roi_pool(x, rois, 4, 0.25), ref)
        ref_grad, grad_ = input_grads(BOTH, x, rois, grad, 4, 0.25)
        assert torch.equal(grad_, ref_grad)


@pytest.mark.parametrize("dtype", FLOATS)
def test_non_finite_values(isa, dtype):
    # NaN is never picked (an all-NaN bin gives -FLT_MAX, even in float64, and no gradient);
    # -inf is never picked either (not > -FLT_MAX); +inf is.
    x = feature_map(dtype=dtype)
    x[0, :, 2:9, 3:12] = float("nan")
    x[1, :, 5:15, 5:10] = -float("inf")
    x[0, 3, 10:12, 20:23] = float("inf")
    x[1, ::2, 0:4, 20:30] = float("nan")
    x[1, 5, 16:20, 0:6] = torch.tensor([float("nan"), -float("inf"), float("inf")], dtype=dtype).repeat(8).view(4, 6)
    rois = torch.cat([random_rois(100, dtype=dtype),
                      torch.tensor([[0, 12, 8, 44, 34], [1, 20, 20, 40, 60], [0, 80, 40, 92, 48], [1, 0, 64, 24, 80],
                                    [1, 80, 0, 120, 16]], dtype=dtype)])
    grad = random_grad(len(rois), 13, (3, 3), dtype=dtype)
    ref = torchvision.ops.roi_pool(x, rois, 3, 0.25)
    assert (ref == -torch.finfo(torch.float32).max).any()  # the test reaches an all-NaN / all -inf bin
    out = tvn.ops.roi_pool(x, rois, 3, 0.25)
    assert torch.equal(out, ref)
    ref_grad, grad_ = input_grads(BOTH, x, rois, grad, 3, 0.25)
    assert torch.equal(grad_, ref_grad)


def test_boxes_as_list_of_tensors():
    x = feature_map()
    boxes = [random_rois(20, seed=5)[:, 1:], random_rois(7, seed=6)[:, 1:]]
    ref = torchvision.ops.roi_pool(x, boxes, 7, 0.25)
    assert torch.equal(tvn.ops.roi_pool(x, boxes, 7, 0.25), ref)
    assert torch.equal(tvn.ops.roi_pool(x, tuple(boxes), 7, 0.25), ref)
    boxes = [torch.zeros(0, 4), random_rois(9, seed=8)[:, 1:]]  # an image without boxes
    assert torch.equal(tvn.ops.roi_pool(x, boxes, (2, 3), 0.5), torchvision.ops.roi_pool(x, boxes, (2, 3), 0.5))
    grad = random_grad(9, 13, (2, 3))
    ref_grad, grad_ = input_grads(BOTH, x, boxes, grad, (2, 3), 0.5)
    assert torch.equal(grad_, ref_grad)


def test_channels_last_and_strided_inputs_give_the_same_result():
    x, rois = feature_map(c=32), random_rois(50)
    ref = torchvision.ops.roi_pool(x, rois, 7, 0.25)
    assert torch.equal(tvn.ops.roi_pool(x.contiguous(memory_format=torch.channels_last), rois, 7, 0.25), ref)
    wide = torch.zeros(2, 32, 23, 62)
    wide[..., ::2] = x
    assert torch.equal(tvn.ops.roi_pool(wide[..., ::2], rois, 7, 0.25), ref)
    rois_wide = torch.zeros(50, 10)
    rois_wide[:, ::2] = rois
    assert torch.equal(tvn.ops.roi_pool(x, rois_wide[:, ::2], 7, 0.25), ref)
    # Gradients for a channels-last input and a non-contiguous output gradient.
    grad = random_grad(50, 32, (7, 7))
    ref_grad = input_grads(BOTH[:1], x, rois, grad, 7, 0.25)[0]
    xr = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    tvn.ops.roi_pool(xr, rois, 7, 0.25).backward(grad.contiguous(memory_format=torch.channels_last))
    assert torch.equal(xr.grad, ref_grad)
    xr = x.clone().requires_grad_()
    tvn.ops.roi_pool(xr, rois, 7, 0.25).backward(grad.transpose(2, 3).contiguous().transpose(2, 3))
    assert torch.equal(xr.grad, ref_grad)


@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16))
def test_half_inputs_compute_in_float32(dtype):
    x, rois = feature_map(dtype=dtype), random_rois(40, dtype=dtype)
    out = tvn.ops.roi_pool(x, rois, 7, 0.25)
    assert out.dtype == dtype
    ref = torchvision.ops.roi_pool(x.float(), rois.float(), 7, 0.25).to(dtype)
    assert torch.equal(out, ref)
    grad = random_grad(40, 13, (7, 7), dtype=dtype)
    ref_grad = input_grads(BOTH[:1], x.float(), rois.float(), grad.float(), 7, 0.25)[0].to(dtype)
    xr = x.clone().requires_grad_()
    tvn.ops.roi_pool(xr, rois, 7, 0.25).backward(grad)
    assert xr.grad.dtype == dtype and torch.equal(xr.grad, ref_grad)


def test_empty_rois_and_threads(num_threads):
    x = feature_map()
    xr = x.clone().requires_grad_()
    empty = tvn.ops.roi_pool(xr, torch.zeros(0, 5), (7, 7), 0.25)
    assert empty.shape == (0, 13, 7, 7) and empty.dtype == torch.float32
    empty.sum().backward()
    assert torch.equal(xr.grad, torch.zeros_like(x))
    assert tvn.ops.roi_pool(x, [torch.zeros(0, 4), torch.zeros(0, 4)], 3, 0.25).shape == (0, 13, 3, 3)
    rois = random_rois(300)
    xr = x.clone().requires_grad_()
    ref = torchvision.ops.roi_pool(xr, rois, 7, 0.25)
    ref.sum().backward()
    ref_grad = xr.grad
    for t in (1, 2):
        tvn.set_num_threads(t)
        xr = x.clone().requires_grad_()
        out = tvn.ops.roi_pool(xr, rois, 7, 0.25)
        out.sum().backward()  # an expanded (stride 0) output gradient
        assert torch.equal(out, ref) and torch.equal(xr.grad, ref_grad), f"{t} threads"


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_numpy_in_numpy_out(dtype):
    x, rois = feature_map().numpy().astype(dtype), random_rois(30).numpy().astype(dtype)
    ref = torchvision.ops.roi_pool(torch.from_numpy(x), torch.from_numpy(rois), 7, 0.25).numpy()
    out = tvn.ops.roi_pool(x, rois, 7, 0.25)
    assert isinstance(out, np.ndarray) and out.dtype == dtype
    assert np.array_equal(out, ref)
    boxes = [rois[rois[:, 0] == 0, 1:], rois[rois[:, 0] == 1, 1:]]
    out = tvn.ops.roi_pool(x, boxes, (3, 4), 0.5)
    assert isinstance(out, np.ndarray) and out.dtype == dtype
    assert np.array_equal(out, torchvision.ops.roi_pool(torch.from_numpy(x), [torch.from_numpy(b) for b in boxes],
                                                        (3, 4), 0.5).numpy())


def test_bad_input():
    x, rois = feature_map(), random_rois(5)
    with pytest.raises(AssertionError, match=r"Tensor\[K, 5\]"):
        tvn.ops.roi_pool(x, rois[:, :4], 7)
    with pytest.raises(AssertionError, match=r"List\[Tensor\[L, 4\]\]"):
        tvn.ops.roi_pool(x, [rois], 7)
    bad = rois.clone()
    bad[2, 0] = 2  # only two images
    with pytest.raises(RuntimeError, match=r"rois\[2, 0\] = 2 is not a batch index"):
        tvn.ops.roi_pool(x, bad, 7)
    bad[2, 0] = -1
    with pytest.raises(RuntimeError, match="not a batch index"):
        tvn.ops.roi_pool(x, bad, 7)
    bad[2, 0] = float("nan")
    with pytest.raises(RuntimeError, match="not a batch index"):
        tvn.ops.roi_pool(x, bad, 7)
    with pytest.raises(RuntimeError, match="same type"):
        tvn.ops.roi_pool(x, rois.double(), 7)
    with pytest.raises(RuntimeError, match="same type"):
        tvn.ops.roi_pool(x.double(), rois, 7)


@pytest.mark.parametrize("value", [-2, 23 * 31, 2**31 - 1])
def test_backward_rejects_argmax_outside_the_plane(isa, value):
    """The native backward takes argmax from its caller: a bad index raises, naming the
    value, and writes nothing outside the gradient (every tier)."""
    from torchvision_native import _C
    from torchvision_native._convert import from_native, to_native

    x, rois = feature_map(), random_rois(6)
    out, argmax = torch.ops.torchvision.roi_pool(x, rois, 1.0, 3, 3)
    grad = torch.ones_like(out)
    bad = argmax.clone()
    bad.view(-1)[bad.numel() // 2] = value
    n, c, h, w = x.shape
    assert value < -1 or value >= h * w
    with pytest.raises(ValueError, match=rf"argmax value {value} is outside the {h}x{w} plane"):
        _C.roi_pool_backward(to_native(grad, "grad"), to_native(rois, "rois"), to_native(bad, "argmax"), 1.0, 3, 3,
                             n, c, h, w)
    good = _C.roi_pool_backward(to_native(grad, "grad"), to_native(rois, "rois"), to_native(argmax, "argmax"), 1.0,
                                3, 3, n, c, h, w)
    expected = torch.ops.torchvision._roi_pool_backward(grad, rois, argmax, 1.0, 3, 3, n, c, h, w)
    assert torch.equal(from_native(good, grad), expected)
