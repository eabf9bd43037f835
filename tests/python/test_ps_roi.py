"""tvn.ops.ps_roi_align and tvn.ops.ps_roi_pool against torchvision on every CPU ISA tier.

tvops keeps torchvision's CPU arithmetic and summation order, so float32 and float64 results
(forward and input gradient) must be identical, not just close. The position-sensitive ops
read input channel (c_out * PH + ph) * PW + pw for output (c_out, ph, pw), so the input has
C = k * PH * PW channels. Quirks copied from torchvision:
  * ps_roi_align always uses the half-pixel offset, never forces RoIs to >= 1 pixel and has no
    divisor guard: a zero-size RoI with adaptive sampling gives 0 / 0 = NaN.
  * ps_roi_pool's forward clips bins to [0, H-1] x [0, W-1] (the last row and column are never
    pooled) while its backward clips to [0, H] x [0, W]; its forward rounds the scaled corners
    with round() in the input's type, its backward with roundf() (float), even for float64.
"""
import numpy as np
import pytest
import torch
import torchvision

import torchvision_native as tvn
from boxes import feature_map as _feature_map, random_rois

FLOATS = (torch.float32, torch.float64)
OPS = {"ps_roi_align": (torchvision.ops.ps_roi_align, tvn.ops.ps_roi_align),
       "ps_roi_pool": (torchvision.ops.ps_roi_pool, tvn.ops.ps_roi_pool)}




def feature_map(n=2, c=18, h=23, w=31, seed=0, dtype=torch.float32):
    return _feature_map(n, c, h, w, seed, dtype)


def random_grad(shape, seed=3, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


def pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def channels_for(output_size, k=2):
    ph, pw = pair(output_size)
    return k * ph * pw


def assert_identical(out, ref):
    """Bitwise-equal values (NaN where the reference has NaN), same dtype and shape."""
    assert isinstance(out, torch.Tensor) and out.dtype == ref.dtype and out.shape == ref.shape
    nan = torch.isnan(ref)
    assert torch.equal(torch.isnan(out), nan)
    assert torch.equal(out[~nan], ref[~nan])


def input_grads(ops, x, rois, grad, *args):
    """The input gradient of each op for the same (x, rois, grad)."""
    grads = []
    for op in ops:
        xr = x.clone().requires_grad_()
        op(xr, rois, *args).backward(grad)
        grads.append(xr.grad)
    return grads


ALIGN_CONFIGS = [  # (output_size, spatial_scale, sampling_ratio)
    ((3, 3), 0.25, -1), ((3, 3), 0.25, 0), ((3, 3), 0.5, 1), ((3, 3), 1.0, 2), ((7, 7), 0.25, 2), ((7, 7), 0.25, -1),
    ((2, 3), 0.5, 0), ((1, 1), 0.25, 1), ((4, 2), 0.125, 2), ((5, 5), 1.0, -1),
]
POOL_CONFIGS = [  # (output_size, spatial_scale)
    ((3, 3), 0.25), ((3, 3), 0.5), ((3, 3), 1.0), ((7, 7), 0.25), ((7, 7), 0.5), ((2, 3), 0.5), ((1, 1), 0.125),
    ((4, 2), 1.0),
]


def all_configs():
    return [("ps_roi_align", c) for c in ALIGN_CONFIGS] + [("ps_roi_pool", c) for c in POOL_CONFIGS]


def config_id(case):
    name, config = case
    return f"{name}-{'x'.join(map(str, config[0]))}-" + "-".join(map(str, config[1:]))


# Tiny, zero-size, inverted, fully outside, partly outside, covering, and exactly on the border
# of the 23 x 31 map at scale 1/4 (x up to 124 = 31 / 0.25, y up to 92 = 23 / 0.25); corners
# whose scaled value is exactly k + 0.5 test round-half-away-from-zero (also at -0.5).
DEGENERATE = [
    [0, 5, 5, 5, 5], [1, 30, 30, 10, 10], [0, 40, 8, 20, 60], [0, -50, -50, -40, -40], [1, 500, 500, 900, 900],
    [0, -20, -20, 200, 200], [1, 0, 0, 0.1, 0.1], [0, 0, 0, 124, 92], [1, 120, 88, 124, 92], [0, 124, 92, 124, 92],
    [1, 123.9, 91.9, 130, 100], [0, 120, 0, 200, 92], [1, -2, -2, 2, 2], [0, 2, 2, 6, 6], [1, 10, 14, 18, 22],
    [0, -6, -6, -2, -2], [1, 118, 86, 122, 90], [0, -4, -4, 0, 0], [1, 126, 94, 130, 98], [0, 0.5, 0.5, 3.5, 3.5],
    [1, 0, 0, 0, 40], [0, 60, 60, 60.5, 61],
]

# RoIs reaching the bottom/right border of the 23 x 31 map at scale 1 (some only cover the last
# row/column, which ps_roi_pool's forward never pools but its backward does).
BORDER = [
    [0, 0, 0, 31, 23], [1, 0, 0, 30, 22], [0, 25, 17, 31, 23], [1, 28, 20, 31, 23], [0, 30, 22, 31, 23],
    [1, 30, 0, 31, 23], [0, 0, 22, 31, 23], [1, 29.5, 21.5, 31, 23], [0, 22, 14, 40, 30], [1, 30, 22, 33, 25],
    [0, 0, 0, 30.5, 22.5], [1, 27, 19, 30.4, 22.4], [0, -3, -3, 31, 23],
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", all_configs(), ids=config_id)
def test_forward_identical_to_torchvision(isa, case, dtype):
    name, config = case
    x, rois = feature_map(c=channels_for(config[0]), dtype=dtype), random_rois(150, dtype=dtype)
    ref_op, op = OPS[name]
    ref = ref_op(x, rois, *config)
    assert ref.shape == (150, 2, *config[0])
    assert_identical(op(x, rois, *config), ref)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", all_configs(), ids=config_id)
def test_backward_identical_to_torchvision(isa, case, dtype):
    name, config = case
    x, rois = feature_map(c=channels_for(config[0]), dtype=dtype), random_rois(120, dtype=dtype)
    grad = random_grad((120, 2, *config[0]), dtype=dtype)
    ref, out = input_grads(OPS[name], x, rois, grad, *config)
    assert out.dtype == dtype and out.shape == x.shape
    assert torch.equal(out, ref)


def test_more_output_channels():
    # k = 5 output channels of 3 x 3 and k = 1 of 7 x 7 (C = 45 and C = 49).
    for output_size, k in (((3, 3), 5), ((7, 7), 1)):
        x, rois = feature_map(c=channels_for(output_size, k)), random_rois(60)
        for name, extra in (("ps_roi_align", (0.25, 2)), ("ps_roi_pool", (0.25,))):
            ref_op, op = OPS[name]
            ref = ref_op(x, rois, output_size, *extra)
            assert ref.shape == (60, k, *output_size)
            assert_identical(op(x, rois, output_size, *extra), ref)
            grad = random_grad(ref.shape)
            ref_grad, grad_ = input_grads(OPS[name], x, rois, grad, output_size, *extra)
            assert torch.equal(grad_, ref_grad)


def test_gradcheck_float64_ps_roi_align():
    x = feature_map(1, 12, 9, 11, dtype=torch.float64).requires_grad_()
    rois = torch.tensor([[0, 1.0, 1.5, 20.0, 30.0], [0, 0.5, 0.5, 3.0, 2.0], [0, 10.0, 5.0, 40.0, 34.0]],
                        dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: tvn.ops.ps_roi_align(t, rois, (3, 2), 0.25, 1), (x,))
    assert torch.autograd.gradcheck(lambda t: tvn.ops.ps_roi_align(t, rois, (2, 2), 0.25, 1), (x,))


def test_gradcheck_float64_ps_roi_pool():
    # RoIs inside the map and short of the last row / column (where forward and backward differ).
    x = feature_map(1, 12, 9, 11, dtype=torch.float64).requires_grad_()
    rois = torch.tensor([[0, 1.0, 1.5, 20.0, 30.0], [0, 0.5, 0.5, 3.0, 2.0], [0, 10.0, 5.0, 36.0, 28.0]],
                        dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: tvn.ops.ps_roi_pool(t, rois, (3, 2), 0.25), (x,))
    assert torch.autograd.gradcheck(lambda t: tvn.ops.ps_roi_pool(t, rois, (2, 2), 0.25), (x,))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", OPS)
def test_degenerate_rois(isa, name, dtype):
    x = feature_map(dtype=dtype)
    rois = torch.tensor(DEGENERATE, dtype=dtype)
    grad = random_grad((len(rois), 2, 3, 3), dtype=dtype)
    ref_op, op = OPS[name]
    configs = [(s, sr) for s in (0.25, 0.5, 1.0) for sr in (-1, 0, 1, 2)] if name == "ps_roi_align" else \
        [(s,) for s in (0.25, 0.5, 1.0)]
    for extra in configs:
        ref = ref_op(x, rois, 3, *extra)
        assert_identical(op(x, rois, 3, *extra), ref)
        ref_grad, grad_ = input_grads(OPS[name], x, rois, grad, 3, *extra)
        assert torch.equal(grad_, ref_grad), extra


def test_zero_size_roi_with_adaptive_sampling_is_nan():
    # torchvision has no divisor guard here: 0 samples / count 0 -> NaN (roi_align gives 0).
    x = feature_map()
    rois = torch.tensor([[0, 5.0, 5.0, 5.0, 5.0], [1, 8.0, 8.0, 20.0, 8.0]])
    ref = torchvision.ops.ps_roi_align(x, rois, 3, 0.25, -1)
    assert torch.isnan(ref).all()
    assert_identical(tvn.ops.ps_roi_align(x, rois, 3, 0.25, -1), ref)
    assert_identical(tvn.ops.ps_roi_align(x, rois, 3, 0.25, 0), ref)
    fixed = tvn.ops.ps_roi_align(x, rois, 3, 0.25, 2)  # a fixed grid samples a point
    assert_identical(fixed, torchvision.ops.ps_roi_align(x, rois, 3, 0.25, 2))
    assert not torch.isnan(fixed).any()


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", OPS)
def test_rois_on_the_bottom_right_border(isa, name, dtype):
    x = feature_map(dtype=dtype)
    rois = torch.tensor(BORDER, dtype=dtype)
    ref_op, op = OPS[name]
    for output_size in ((3, 3), (1, 1), (2, 3)):
        xc = x[:, :channels_for(output_size)].contiguous()
        extras = [(1.0, sr) for sr in (-1, 1, 2)] if name == "ps_roi_align" else [(1.0,)]
        for extra in extras:
            ref = ref_op(xc, rois, output_size, *extra)
            assert_identical(op(xc, rois, output_size, *extra), ref)
            grad = random_grad(ref.shape, dtype=dtype)
            ref_grad, grad_ = input_grads(OPS[name], xc, rois, grad, output_size, *extra)
            assert torch.equal(grad_, ref_grad), (output_size, extra)


def test_ps_roi_pool_border_forward_and_backward_clip_differently(isa):
    # One RoI covering only the last row: the forward bin is empty (0), yet the backward
    # spreads the gradient over row H-1; the whole-map RoI skips row H-1 / column W-1 forward.
    x = feature_map(1, 1, 8, 8, dtype=torch.float64)
    rois = torch.tensor([[0, 0, 7, 8, 8], [0, 0, 0, 8, 8]], dtype=torch.float64)
    ref = torchvision.ops.ps_roi_pool(x, rois, 1)
    out = tvn.ops.ps_roi_pool(x, rois, 1)
    assert_identical(out, ref)
    assert out[0].item() == 0 and out[1].item() == pytest.approx(x[0, 0, :7, :7].mean().item(), rel=1e-12)
    ref_grad, grad_ = input_grads(OPS["ps_roi_pool"], x, rois[:1], torch.ones(1, 1, 1, 1, dtype=torch.float64), 1)
    assert torch.equal(grad_, ref_grad)
    assert torch.equal(grad_[0, 0, 7], torch.full((8,), 1 / 8, dtype=torch.float64))
    ref_grad, grad_ = input_grads(OPS["ps_roi_pool"], x, rois[1:], torch.ones(1, 1, 1, 1, dtype=torch.float64), 1)
    assert torch.equal(grad_, ref_grad)
    assert torch.equal(grad_, torch.full_like(x, 1 / 64))


def test_ps_roi_pool_float64_rounding_forward_round_backward_roundf(isa):
    # 2.4999999999 rounds to 2 in double (forward) but is 2.5f -> 3 in float (backward).
    x = feature_map(1, 9, 10, 12, dtype=torch.float64)
    rois = torch.tensor([[0, 2.4999999999, 1.4999999999, 8.4999999999, 7.5000000001],
                         [0, -0.4999999999, 0.5, 5.4999999999, 9.4999999999]], dtype=torch.float64)
    ref = torchvision.ops.ps_roi_pool(x, rois, 3)
    assert_identical(tvn.ops.ps_roi_pool(x, rois, 3), ref)
    grad = random_grad(ref.shape, dtype=torch.float64)
    ref_grad, grad_ = input_grads(OPS["ps_roi_pool"], x, rois, grad, 3)
    assert torch.equal(grad_, ref_grad)


@pytest.mark.parametrize("name", OPS)
def test_boxes_as_list_of_tensors(name):
    ref_op, op = OPS[name]
    extra = (0.25, 2) if name == "ps_roi_align" else (0.25,)
    x = feature_map(c=98)
    boxes = [random_rois(20, seed=5)[:, 1:], random_rois(7, seed=6)[:, 1:]]
    ref = ref_op(x, boxes, 7, *extra)
    assert_identical(op(x, boxes, 7, *extra), ref)
    assert_identical(op(x, tuple(boxes), 7, *extra), ref)
    boxes = [torch.zeros(0, 4), random_rois(9, seed=8)[:, 1:]]  # an image without boxes
    ref = ref_op(x, boxes, (7, 7), *extra)
    assert_identical(op(x, boxes, (7, 7), *extra), ref)
    ref_grad, grad_ = input_grads(OPS[name], x, boxes, random_grad(ref.shape), (7, 7), *extra)
    assert torch.equal(grad_, ref_grad)


@pytest.mark.parametrize("name", OPS)
def test_channels_last_and_strided_inputs_give_the_same_result(name):
    ref_op, op = OPS[name]
    extra = (0.25, 2) if name == "ps_roi_align" else (0.25,)
    x, rois = feature_map(c=36), random_rois(50)
    ref = ref_op(x, rois, 3, *extra)
    assert_identical(op(x.contiguous(memory_format=torch.channels_last), rois, 3, *extra), ref)
    wide = torch.zeros(2, 36, 23, 62)
    wide[..., ::2] = x
    assert_identical(op(wide[..., ::2], rois, 3, *extra), ref)
    rois_wide = torch.zeros(50, 10)
    rois_wide[:, ::2] = rois
    assert_identical(op(x, rois_wide[:, ::2], 3, *extra), ref)
    # Gradients for a channels-last input and non-contiguous output gradients.
    grad = random_grad(ref.shape)
    ref_grad = input_grads(OPS[name][:1], x, rois, grad, 3, *extra)[0]
    xr = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    op(xr, rois, 3, *extra).backward(grad.contiguous(memory_format=torch.channels_last))
    assert torch.equal(xr.grad, ref_grad)
    xr = x.clone().requires_grad_()
    op(xr, rois, 3, *extra).backward(grad.transpose(2, 3).contiguous().transpose(2, 3))
    assert torch.equal(xr.grad, ref_grad)


@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16))
@pytest.mark.parametrize("name", OPS)
def test_half_inputs_compute_in_float32(name, dtype):
    ref_op, op = OPS[name]
    extra = (0.25, 2) if name == "ps_roi_align" else (0.25,)
    x, rois = feature_map(dtype=dtype), random_rois(40, dtype=dtype)
    out = op(x, rois, 3, *extra)
    assert out.dtype == dtype
    ref = ref_op(x.float(), rois.float(), 3, *extra)
    assert_identical(out, ref.to(dtype))
    grad = random_grad(ref.shape, dtype=dtype)
    ref_grad = input_grads(OPS[name][:1], x.float(), rois.float(), grad.float(), 3, *extra)[0].to(dtype)
    xr = x.clone().requires_grad_()
    op(xr, rois, 3, *extra).backward(grad)
    assert xr.grad.dtype == dtype and torch.equal(xr.grad, ref_grad)


@pytest.mark.parametrize("name", OPS)
def test_empty_rois_and_threads(name, num_threads):
    ref_op, op = OPS[name]
    extra = (0.25, -1) if name == "ps_roi_align" else (0.25,)
    x = feature_map(c=98)
    xr = x.clone().requires_grad_()
    empty = op(xr, torch.zeros(0, 5), (7, 7), *extra)
    assert empty.shape == (0, 2, 7, 7) and empty.dtype == torch.float32
    empty.sum().backward()
    assert torch.equal(xr.grad, torch.zeros_like(x))
    assert op(x, [torch.zeros(0, 4), torch.zeros(0, 4)], 7, *extra).shape == (0, 2, 7, 7)
    rois = random_rois(300)
    xr = x.clone().requires_grad_()
    ref = ref_op(xr, rois, 7, *extra)
    ref.sum().backward()
    ref_grad = xr.grad
    for t in (1, 2):
        tvn.set_num_threads(t)
        xr = x.clone().requires_grad_()
        out = op(xr, rois, 7, *extra)
        out.sum().backward()  # an expanded (stride 0) output gradient
        assert torch.equal(out, ref) and torch.equal(xr.grad, ref_grad), f"{t} threads"


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("name", OPS)
def test_numpy_in_numpy_out(name, dtype):
    ref_op, op = OPS[name]
    extra = (0.25, 2) if name == "ps_roi_align" else (0.25,)
    x, rois = feature_map().numpy().astype(dtype), random_rois(30).numpy().astype(dtype)
    out = op(x, rois, 3, *extra)
    assert isinstance(out, np.ndarray) and out.dtype == dtype
    assert np.array_equal(out, ref_op(torch.from_numpy(x), torch.from_numpy(rois), 3, *extra).numpy())
    boxes = [rois[rois[:, 0] == 0, 1:], rois[rois[:, 0] == 1, 1:]]
    out = op(x, boxes, (3, 3), *extra)
    assert isinstance(out, np.ndarray) and out.dtype == dtype
    ref = ref_op(torch.from_numpy(x), [torch.from_numpy(b) for b in boxes], (3, 3), *extra).numpy()
    assert np.array_equal(out, ref)


@pytest.mark.parametrize("name", OPS)
def test_bad_input(name):
    _, op = OPS[name]
    x, rois = feature_map(), random_rois(5)
    with pytest.raises(AssertionError, match=r"Tensor\[K, 5\]"):
        op(x, rois[:, :4], 3)
    with pytest.raises(AssertionError, match=r"List\[Tensor\[L, 4\]\]"):
        op(x, [rois], 3)
    bad = rois.clone()
    bad[2, 0] = 2  # only two images
    with pytest.raises(RuntimeError, match=r"rois\[2, 0\] = 2 is not a batch index"):
        op(x, bad, 3)
    bad[2, 0] = -1
    with pytest.raises(RuntimeError, match="not a batch index"):
        op(x, bad, 3)
    bad[2, 0] = float("nan")
    with pytest.raises(RuntimeError, match="not a batch index"):
        op(x, bad, 3)
    with pytest.raises(RuntimeError, match="same type"):
        op(x, rois.double(), 3)
    with pytest.raises(RuntimeError, match="same type"):
        op(x.double(), rois, 3)
    for c, output_size in ((17, 3), (18, 7), (18, (3, 4)), (10, (2, 3))):
        with pytest.raises(RuntimeError, match=r"multiple of pooling height \* pooling width"):
            op(feature_map(c=c), rois, output_size)


@pytest.mark.parametrize("dtype", FLOATS)
def test_large_rois_reaching_far_off_a_small_map(isa, dtype):
    """PERF.md's psra7 shape: image-sized boxes on a small map at scale 1 with adaptive
    sampling (grids of ~100 samples a side, most off the map), some inverted; tvops walks
    each bin's samples only until they leave the map."""
    g = torch.Generator().manual_seed(7)
    xy = torch.rand(60, 2, generator=g, dtype=torch.float64) * 700 - 100
    wh = (torch.rand(60, 2, generator=g, dtype=torch.float64) - 0.1) * 800
    idx = torch.randint(0, 2, (60, 1), generator=g).to(torch.float64)
    rois = torch.cat([idx, xy, xy + wh], dim=1).to(dtype)
    x = feature_map(c=channels_for((7, 7)), dtype=dtype)
    for extra in ((1.0, -1), (1.0, 3), (0.5, -1)):
        ref = torchvision.ops.ps_roi_align(x, rois, 7, *extra)
        assert_identical(tvn.ops.ps_roi_align(x, rois, 7, *extra), ref)
        grad = random_grad(ref.shape, dtype=dtype)
        ref_grad, grad_ = input_grads(OPS["ps_roi_align"], x, rois, grad, 7, *extra)
        assert torch.equal(grad_, ref_grad), extra
