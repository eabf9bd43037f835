"""tvn.ops.nms against torchvision.ops.nms, the independent reference.

Every CPU test that takes the ``isa`` fixture runs once per ISA tier this build and CPU
have (see conftest.py). Results must be identical index for index (torch.equal).
"""
import functools
import math
import multiprocessing
import threading

import numpy as np
import pytest
import torch
import torchvision

import torchvision_native as tvn
from boxes import clustered_boxes, random_boxes, tied_scores, with_duplicates

NAN, INF = math.nan, math.inf
FLOATS = (torch.float32, torch.float64)
SIZES = (0, 1, 2, 10, 1000, 5000)
THRESHOLDS = (0.0, 0.3, 0.5, 0.7, 1.0)
# Adversarial inputs also see thresholds outside [0, 1] and NaN.
ADV_THRESHOLDS = (0.0, 0.3, 0.5, 0.7, 1.0, -0.5, NAN, INF, 1e-9)


def reference(boxes, scores, iou_threshold):
    """torchvision's result: ("ok", indices) or ("raises", exception)."""
    try:
        return "ok", torchvision.ops.nms(boxes, scores, iou_threshold)
    except Exception as e:  # noqa: BLE001 - any torchvision error is the expected outcome
        return "raises", e


def assert_matches_torchvision(boxes, scores, iou_threshold, expected=None):
    """tvn.ops.nms gives torchvision's indices, or raises where torchvision raises."""
    kind, ref = expected if expected is not None else reference(boxes, scores, iou_threshold)
    if kind == "raises":
        with pytest.raises(RuntimeError):
            tvn.ops.nms(boxes, scores, iou_threshold)
        return
    out = tvn.ops.nms(boxes, scores, iou_threshold)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.int64
    assert out.device == boxes.device
    assert torch.equal(out, ref), f"tvops kept {out.numel()} boxes, torchvision {ref.numel()}; first differences: " \
        f"{first_difference(out, ref)}"


def first_difference(a, b):
    n = min(a.numel(), b.numel())
    diff = (a[:n] != b[:n]).nonzero()
    at = int(diff[0]) if diff.numel() else n
    return f"at position {at}: tvops {a[at:at + 5].tolist()} vs torchvision {b[at:at + 5].tolist()}"


@functools.lru_cache(maxsize=None)
def random_case(n, dtype):
    return random_boxes(n, seed=1000 + n, dtype=dtype)


@functools.lru_cache(maxsize=None)
def random_reference(n, dtype, iou_threshold):
    return reference(*random_case(n, dtype), iou_threshold)


# ---------------------------------------------------------------------------------------
# Adversarial inputs: name -> function(dtype) returning (boxes, scores), or None where the
# case does not apply to that dtype.

def _base(n=500, seed=7):
    """float64 random boxes; each case casts to the dtype under test at the end."""
    return random_boxes(n, seed=seed, dtype=torch.float64)


def _cast(dtype, boxes, scores):
    return boxes.to(dtype), scores.to(dtype)


def case_ties_few_levels(dtype):
    b, _ = _base()
    return _cast(dtype, b, tied_scores(len(b), 3, seed=1, dtype=torch.float64))


def case_all_equal_scores(dtype):
    b, s = _base()
    return _cast(dtype, b, torch.full_like(s, 0.5))


def case_signed_zero_and_inf_scores(dtype):
    b, s = _base()
    s = s.clone()
    s[0::5], s[1::5], s[2::5], s[3::5] = 0.0, -0.0, INF, -INF
    return _cast(dtype, b, s)


def case_duplicate_boxes(dtype):
    b, s = _base(n=200)
    b, s = with_duplicates(b, s, copies=3)
    s = s.clone()
    s[1::3] += 1e-3  # some duplicates outrank their originals, some tie
    return _cast(dtype, b, s)


def case_duplicate_boxes_tied(dtype):
    b, s = _base(n=200)
    return _cast(dtype, *with_duplicates(b, s, copies=4))


def case_zero_area(dtype):
    b, s = _base()
    b = b.clone()
    b[0::3, 2] = b[0::3, 0]  # zero width
    b[1::3, 3] = b[1::3, 1]  # zero height
    return _cast(dtype, b, s)


def case_points(dtype):
    b, s = _base()
    b = b.clone()
    b[:, 2:] = b[:, :2]
    b[::2] = b[1::2]  # identical points: IoU 0/0 = NaN, never suppresses
    return _cast(dtype, b, s)


def case_all_zero_boxes(dtype):
    b, s = _base(n=100)
    return _cast(dtype, torch.zeros_like(b), s)


def case_inverted_some(dtype):
    b, s = _base()
    b = b.clone()
    b[0::4] = b[0::4][:, [2, 1, 0, 3]]  # x2 < x1: negative area
    b[1::4] = b[1::4][:, [2, 3, 0, 1]]  # both inverted: positive area, empty intersection
    b[2::4] = b[2::4][:, [0, 3, 2, 1]]  # y2 < y1
    return _cast(dtype, b, s)


def case_inverted_all(dtype):
    b, s = _base()
    return _cast(dtype, b[:, [2, 3, 0, 1]], s)


def case_nan_scores(dtype):
    b, s = _base()
    s = s.clone()
    s[::7] = NAN
    return _cast(dtype, b, s)


def case_all_nan_scores(dtype):
    b, s = _base()
    return _cast(dtype, b, torch.full_like(s, NAN))


def case_nan_inf_coords(dtype):
    b, s = _base()
    b = b.clone()
    b[0::9, 0] = NAN
    b[1::9, 3] = NAN
    b[2::9, 2] = INF
    b[3::9, 0] = -INF
    b[4::9] = INF
    b[5::9, 1], b[5::9, 3] = -INF, INF
    b[6::9] = NAN
    return _cast(dtype, b, s)


def case_one_point_cluster(dtype):
    # 300 copies of one box plus 300 tiny jitters of it: everything overlaps everything.
    b = torch.tensor([[5.0, 5.0, 6.0, 6.0]], dtype=torch.float64).repeat(600, 1)
    b[300:] += torch.rand(300, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 1e-4
    s = torch.rand(600, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    return _cast(dtype, b, s)


def case_tight_cluster(dtype):
    return _cast(dtype, *clustered_boxes(1000, seed=5, spread=1e-3))


def case_wide_cluster(dtype):
    return _cast(dtype, *clustered_boxes(1000, seed=6, spread=15.0))


def case_thin_boxes(dtype):
    b, s = _base()
    b = b.clone()
    b[:, 2] = b[:, 0] + (b[:, 2] - b[:, 0]) * 1e-3
    return _cast(dtype, b, s)


def case_negative_coords(dtype):
    b, s = _base()
    return _cast(dtype, b - 2000.0, s)


def case_mixed_scales(dtype):
    b, _ = _base()
    b = torch.cat([b, b * 1e6, b * 1e-6, b * 0.01 + 500.0])
    s = torch.rand(len(b), generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    return _cast(dtype, b, s)


def case_huge_1e30(dtype):
    if dtype != torch.float64:
        return None
    b, s = _base()
    return _cast(dtype, b * 1e30, s)


def case_tiny_boxes_at_1e7(dtype):
    # float32 has an ulp of 1 at 1e7: many boxes collapse to identical or zero-area ones.
    b, s = _base()
    b = b * 1e-3 + 1e7
    return _cast(dtype, b, s)


def case_tiny_coords(dtype):
    b, s = _base()
    scale = 1e-300 if dtype == torch.float64 else 1e-36  # areas underflow to 0 / subnormal
    return _cast(dtype, b * scale, s)


def case_integer_lattice(dtype):
    # Small integer boxes: many IoUs are exactly 0.5, 1/3, 0.25, 1.0, ...
    g = torch.Generator().manual_seed(9)
    xy = torch.randint(0, 12, (400, 2), generator=g)
    wh = torch.randint(0, 6, (400, 2), generator=g)
    b = torch.cat([xy, xy + wh], dim=1).to(torch.float64)
    s = torch.randint(0, 4, (400,), generator=g).to(torch.float64)
    return _cast(dtype, b, s)


ADVERSARIAL = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}
ADVERSARIAL_PARAMS = [pytest.param(name, dtype, id=f"{name}-{str(dtype)[len('torch.'):]}")
                      for name in sorted(ADVERSARIAL) for dtype in FLOATS if ADVERSARIAL[name](dtype) is not None]


# ---------------------------------------------------------------------------------------
# Parity with torchvision on the CPU.

@pytest.mark.parametrize("iou_threshold", THRESHOLDS)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_random_boxes_match_torchvision(isa, dtype, n, iou_threshold):
    boxes, scores = random_case(n, dtype)
    assert_matches_torchvision(boxes, scores, iou_threshold, random_reference(n, dtype, iou_threshold))


def spread_case(n, variant, dtype):
    """Spread-out boxes, nearly all kept: up to 512 of them, nms scans the kept boxes by
    buckets of x centre once enough are kept, with a run of buckets per query."""
    b, s = random_boxes(n, seed=40 + n, dtype=torch.float64)
    if variant == "shifted_scaled":  # far from the origin, and small against the offset
        b = b * 1e-2 - 3e4
    elif variant == "huge":
        b = b * (1e30 if dtype == torch.float64 else 1e30 ** 0.5)
    elif variant == "outlier":  # one far box stretches the centres' span: one crowded bucket
        b[n // 2] = torch.tensor([1e9, 1e9, 1e9 + 10, 1e9 + 10], dtype=torch.float64)
    elif variant == "improper_mixed":  # boxes that never interact, spread among the others
        b[::7, 2] = b[::7, 0]           # zero width
        b[3::11] = float("nan")
        b[5::13, 3] = float("inf")
    elif variant == "duplicates_late":  # copies of early (kept) boxes arrive after the switch
        b[n // 2:] = b[: n - n // 2] + 1e-3
    return b.to(dtype), s.to(dtype)


@pytest.mark.parametrize("iou_threshold", (0.05, 0.3, 0.5, 0.7, 0.95, 1.0))
@pytest.mark.parametrize("variant", ("plain", "shifted_scaled", "huge", "outlier", "improper_mixed",
                                     "duplicates_late"))
@pytest.mark.parametrize("n", (60, 200, 512))
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_spread_boxes_bucketed_scan(isa, dtype, n, variant, iou_threshold):
    assert_matches_torchvision(*spread_case(n, variant, dtype), iou_threshold)


@pytest.mark.parametrize("iou_threshold", ADV_THRESHOLDS)
@pytest.mark.parametrize("case, dtype", ADVERSARIAL_PARAMS)
def test_adversarial_match_torchvision(isa, case, dtype, iou_threshold):
    assert_matches_torchvision(*ADVERSARIAL[case](dtype), iou_threshold)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("iou_threshold", [0.0, 0.5, 0.9, 1.0])
def test_identical_boxes(isa, dtype, iou_threshold):
    # Identical proper boxes have IoU exactly 1: suppressed below 1, kept at 1.0.
    boxes = torch.tensor([[1.0, 2.0, 3.0, 5.0]] * 4, dtype=dtype)
    scores = torch.tensor([0.1, 0.4, 0.3, 0.2], dtype=dtype)
    assert_matches_torchvision(boxes, scores, iou_threshold)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("inner, width, iou", [(1.0, 2.0, 0.5), (1.0, 3.0, 1 / 3), (7.0, 10.0, 0.7)],
                         ids=["0.5", "1/3", "0.7"])
def test_iou_exactly_at_threshold(isa, dtype, inner, width, iou):
    # Suppression needs IoU strictly greater than the threshold (compared in double).
    boxes = torch.tensor([[0.0, 0.0, width, 1.0], [0.0, 0.0, inner, 1.0]], dtype=dtype)
    scores = torch.tensor([0.9, 0.8], dtype=dtype)
    computed = float(torch.tensor(inner, dtype=dtype) / torch.tensor(width, dtype=dtype))
    for t in (iou, computed, math.nextafter(computed, -INF), iou - 1e-6, iou + 1e-6):
        expected = [0, 1] if computed <= t else [0]
        assert tvn.ops.nms(boxes, scores, t).tolist() == expected, t
        assert_matches_torchvision(boxes, scores, t)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_negative_threshold_keeps_only_nan_iou(isa, dtype):
    # IoU >= 0 > threshold: the top box suppresses every box whose IoU with it is not NaN.
    boxes, scores = random_boxes(300, seed=11, dtype=dtype)
    out = tvn.ops.nms(boxes, scores, -0.1)
    assert out.tolist() == [int(scores.argmax())]
    assert_matches_torchvision(boxes, scores, -0.1)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_nan_threshold_keeps_everything(isa, dtype):
    boxes, scores = random_boxes(300, seed=12, dtype=dtype)
    out = tvn.ops.nms(boxes, scores, NAN)
    assert torch.equal(out, torch.argsort(scores, descending=True, stable=True))
    assert_matches_torchvision(boxes, scores, NAN)


@pytest.mark.parametrize("iou_threshold", [0, 1, np.float32(0.5), np.float64(0.5), torch.tensor(0.5)],
                         ids=["int0", "int1", "np.float32", "np.float64", "tensor"])
def test_threshold_types(isa, iou_threshold):
    boxes, scores = random_case(1000, torch.float32)
    assert_matches_torchvision(boxes, scores, float(iou_threshold))
    assert torch.equal(tvn.ops.nms(boxes, scores, iou_threshold),
                       torchvision.ops.nms(boxes, scores, float(iou_threshold)))


def test_near_dbl_max_coordinates(isa):
    # Widths 5e307 (finite), heights 2: areas 1e308 are finite, but the centres (x1+x2)/2 overflow.
    boxes = torch.tensor([[1.0e308, 0.0, 1.5e308, 2.0], [1.1e308, 0.0, 1.6e308, 2.0]], dtype=torch.float64)
    scores = torch.tensor([0.9, 0.8], dtype=torch.float64)
    # torchvision: union overflows to inf, IoU 0, both kept.
    assert torchvision.ops.nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert tvn.ops.nms(boxes, scores, 0.5).tolist() == [0, 1]


# ---------------------------------------------------------------------------------------
# Empty input, half precision.

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
def test_empty(isa, dtype):
    out = tvn.ops.nms(torch.empty(0, 4, dtype=dtype), torch.empty(0, dtype=dtype), 0.5)
    assert out.dtype == torch.int64 and out.shape == (0,) and out.device.type == "cpu"
    np_dtype = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}.get(dtype)
    if np_dtype is not None:
        out = tvn.ops.nms(np.empty((0, 4), np_dtype), np.empty(0, np_dtype), 0.5)
        assert isinstance(out, np.ndarray) and out.dtype == np.int64 and out.shape == (0,)


@pytest.mark.parametrize("iou_threshold", THRESHOLDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_matches_torchvision_on_upcast(isa, dtype, iou_threshold):
    # torchvision's CPU kernel has no half kernel: the reference runs on the inputs cast to float32.
    boxes, scores = random_case(1000, torch.float32)
    boxes, scores = boxes.to(dtype), scores.to(dtype)  # rounding gives many score ties
    out = tvn.ops.nms(boxes, scores, iou_threshold)
    ref = torchvision.ops.nms(boxes.float(), scores.float(), iou_threshold)
    assert out.dtype == torch.int64
    assert torch.equal(out, ref)


def test_half_numpy_matches_torchvision_on_upcast(isa):
    boxes, scores = random_case(1000, torch.float32)
    nb, ns = boxes.numpy().astype(np.float16), scores.numpy().astype(np.float16)
    ref = torchvision.ops.nms(torch.from_numpy(nb).float(), torch.from_numpy(ns).float(), 0.5)
    np.testing.assert_array_equal(tvn.ops.nms(nb, ns, 0.5), ref.numpy())


def test_half_adversarial_matches_torchvision_on_upcast(isa):
    boxes, scores = case_nan_inf_coords(torch.float32)
    boxes, scores = boxes.half(), scores.half()
    for t in ADV_THRESHOLDS:
        assert torch.equal(tvn.ops.nms(boxes, scores, t), torchvision.ops.nms(boxes.float(), scores.float(), t))


# ---------------------------------------------------------------------------------------
# Input and output types, layouts.

@pytest.fixture(scope="module")
def case1k():
    boxes, scores = random_case(1000, torch.float32)
    return boxes, scores, torchvision.ops.nms(boxes, scores, 0.5)


def test_torch_in_torch_out(isa, case1k):
    boxes, scores, ref = case1k
    out = tvn.ops.nms(boxes, scores, 0.5)
    assert type(out) is torch.Tensor
    assert out.dtype == torch.int64 and out.device == boxes.device and out.dim() == 1
    assert torch.equal(out, ref)


def test_numpy_in_numpy_out(isa, case1k):
    boxes, scores, ref = case1k
    out = tvn.ops.nms(boxes.numpy(), scores.numpy(), 0.5)
    assert type(out) is np.ndarray
    assert out.dtype == np.int64 and out.ndim == 1
    np.testing.assert_array_equal(out, ref.numpy())


def test_inputs_not_modified(isa, case1k):
    boxes, scores, _ = case1k
    b, s = boxes.clone(), scores.clone()
    tvn.ops.nms(b, s, 0.5)
    assert torch.equal(b, boxes) and torch.equal(s, scores)


def test_non_contiguous_torch(isa, case1k):
    boxes, scores, ref = case1k
    transposed = boxes.t().contiguous().t()  # column-major view, strides (1, N)
    assert not transposed.is_contiguous()
    assert torch.equal(tvn.ops.nms(transposed, scores, 0.5), ref)
    assert torch.equal(tvn.ops.nms(transposed[:, [0, 1, 2, 3]], scores, 0.5), ref)
    # Slices with a step, in both dimensions.
    wide = torch.zeros(2 * len(boxes), 8)
    wide[::2, ::2] = boxes
    wide_scores = torch.zeros(3 * len(scores))
    wide_scores[::3] = scores
    b, s = wide[::2, ::2], wide_scores[::3]
    assert not b.is_contiguous() and not s.is_contiguous()
    assert torch.equal(tvn.ops.nms(b, s, 0.5), ref)
    # Expanded (stride 0) scores.
    flat = torch.full((1,), 0.5).expand(len(boxes))
    assert torch.equal(tvn.ops.nms(boxes, flat, 0.5), torchvision.ops.nms(boxes, flat.contiguous(), 0.5))


def test_non_contiguous_numpy(isa, case1k):
    boxes, scores, ref = case1k
    nb, ns = boxes.numpy(), scores.numpy()
    np.testing.assert_array_equal(tvn.ops.nms(np.asfortranarray(nb), ns, 0.5), ref.numpy())
    # Negative strides: the result indexes the reversed arrays.
    rb, rs = nb[::-1], ns[::-1]
    rref = torchvision.ops.nms(torch.from_numpy(rb.copy()), torch.from_numpy(rs.copy()), 0.5)
    np.testing.assert_array_equal(tvn.ops.nms(rb, rs, 0.5), rref.numpy())


def test_read_only_numpy(isa, case1k):
    boxes, scores, ref = case1k
    nb, ns = boxes.numpy().copy(), scores.numpy().copy()
    nb.flags.writeable = False
    ns.flags.writeable = False
    np.testing.assert_array_equal(tvn.ops.nms(nb, ns, 0.5), ref.numpy())


def test_big_endian_numpy(isa, case1k):
    boxes, scores, ref = case1k
    out = tvn.ops.nms(boxes.numpy().astype(">f4"), scores.numpy().astype(">f4"), 0.5)
    np.testing.assert_array_equal(out, ref.numpy())


def test_requires_grad(isa, case1k):
    boxes, scores, ref = case1k
    b, s = boxes.clone().requires_grad_(), scores.clone().requires_grad_()
    out = tvn.ops.nms(b, s, 0.5)
    assert not out.requires_grad
    assert torch.equal(out, ref)
    # Non-leaf tensors in a graph too.
    assert torch.equal(tvn.ops.nms(b * 1, s * 1, 0.5), ref)


# ---------------------------------------------------------------------------------------
# Errors: torchvision's checks and messages, as RuntimeError subclasses.

def _f(*shape, dtype=torch.float32):
    return torch.rand(shape, dtype=dtype)


BAD_INPUTS = {
    # name: (boxes, scores, exception type, message regex, torchvision raises the same message)
    "boxes_1d": (_f(4), _f(4), ValueError, r"boxes should be a 2d tensor, got 1D", True),
    "boxes_3d": (_f(5, 2, 2), _f(5), ValueError, r"boxes should be a 2d tensor, got 3D", True),
    "boxes_n5": (_f(5, 5), _f(5), ValueError, r"boxes should have 4 elements in dimension 1, got 5", True),
    "boxes_n3_empty": (_f(0, 3), _f(0), ValueError, r"boxes should have 4 elements in dimension 1, got 3", True),
    "scores_2d": (_f(5, 4), _f(5, 1), ValueError, r"scores should be a 1d tensor, got 2D", True),
    "scores_0d": (_f(1, 4), _f(), ValueError, r"scores should be a 1d tensor, got 0D", True),
    "mismatched_n": (_f(5, 4), _f(4), ValueError,
                     r"boxes and scores should have same number of elements in dimension 0, got 5 and 4", True),
    "mismatched_dtype": (_f(5, 4), _f(5, dtype=torch.float64), TypeError, r"should have the same type as scores",
                         True),
    "mismatched_half": (_f(5, 4, dtype=torch.float16), _f(5), TypeError, r"should have the same type as scores",
                        False),
    "int64": (torch.zeros(5, 4, dtype=torch.int64), torch.zeros(5, dtype=torch.int64), TypeError,
              r"floating point", False),
    "int32": (torch.zeros(5, 4, dtype=torch.int32), torch.zeros(5, dtype=torch.int32), TypeError,
              r"floating point", False),
    "uint8": (torch.zeros(5, 4, dtype=torch.uint8), torch.zeros(5, dtype=torch.uint8), TypeError,
              r"floating point", False),
    "bool": (torch.zeros(5, 4, dtype=torch.bool), torch.zeros(5, dtype=torch.bool), TypeError,
             r"floating point", False),
    "int64_empty": (torch.zeros(0, 4, dtype=torch.int64), torch.zeros(0, dtype=torch.int64), TypeError,
                    r"floating point", False),
    "complex": (torch.zeros(5, 4, dtype=torch.complex64), torch.zeros(5, dtype=torch.complex64), TypeError,
                None, False),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input(name):
    boxes, scores, exc_type, message, torchvision_same = BAD_INPUTS[name]
    with pytest.raises(RuntimeError, match=message) as info:
        tvn.ops.nms(boxes, scores, 0.5)
    assert isinstance(info.value, exc_type)
    assert isinstance(info.value, tvn.TvopsError)
    # torchvision rejects the same input (where the message is shared, with the same words).
    with pytest.raises(RuntimeError, match=message if torchvision_same else None):
        torchvision.ops.nms(boxes, scores, 0.5)


@pytest.mark.parametrize("name", ["boxes_1d", "boxes_n5", "scores_2d", "mismatched_n", "mismatched_dtype", "int64"])
def test_bad_input_numpy(name):
    boxes, scores, exc_type, message, _ = BAD_INPUTS[name]
    with pytest.raises(exc_type, match=message):
        tvn.ops.nms(boxes.numpy(), scores.numpy(), 0.5)


def test_check_order_matches_torchvision():
    # Both boxes and scores wrong: the boxes check fires first, as in torchvision.
    boxes, scores = _f(5), _f(5, 2)
    with pytest.raises(RuntimeError, match="boxes should be a 2d tensor"):
        tvn.ops.nms(boxes, scores, 0.5)
    with pytest.raises(RuntimeError, match="boxes should be a 2d tensor"):
        torchvision.ops.nms(boxes, scores, 0.5)


def test_bad_threshold_type():
    boxes, scores = _f(5, 4), _f(5)
    with pytest.raises(TypeError):
        tvn.ops.nms(boxes, scores, None)


# ---------------------------------------------------------------------------------------
# CUDA (skipped without a GPU).

@pytest.mark.cuda
class TestCuda:
    @pytest.mark.parametrize("iou_threshold", THRESHOLDS)
    @pytest.mark.parametrize("n", SIZES)
    @pytest.mark.parametrize("dtype", FLOATS, ids=str)
    def test_random_matches_torchvision_cuda(self, dtype, n, iou_threshold):
        boxes, scores = (t.cuda() for t in random_case(n, dtype))
        out = tvn.ops.nms(boxes, scores, iou_threshold)
        ref = torchvision.ops.nms(boxes, scores, iou_threshold)
        assert out.device == boxes.device
        assert out.dtype == torch.int64
        assert torch.equal(out, ref)

    @pytest.mark.parametrize("n", (20000, 50000, 100000))
    def test_large_matches_torchvision_cuda(self, n):
        boxes, scores = (t.cuda() for t in random_boxes(n, seed=20))
        for iou_threshold in (0.5, 0.1, 0.9):
            out = tvn.ops.nms(boxes, scores, iou_threshold)
            assert torch.equal(out, torchvision.ops.nms(boxes, scores, iou_threshold)), iou_threshold

    @pytest.mark.parametrize("iou_threshold", ADV_THRESHOLDS)
    @pytest.mark.parametrize("case, dtype", ADVERSARIAL_PARAMS)
    def test_adversarial_match_torchvision_cuda(self, case, dtype, iou_threshold):
        boxes, scores = (t.cuda() for t in ADVERSARIAL[case](dtype))
        assert torch.equal(tvn.ops.nms(boxes, scores, iou_threshold),
                           torchvision.ops.nms(boxes, scores, iou_threshold))

    def test_more_overlaps_than_the_lists_hold(self):
        # 3000 copies of one box among random ones: ~4.5M suppressing pairs, past the
        # grid path's list capacity, so the dense mask takes over.
        boxes, scores = random_case(5000, torch.float32)
        boxes = boxes.clone()
        boxes[:3000] = boxes[0]
        boxes, scores = boxes.cuda(), scores.cuda()
        for iou_threshold in (0.5, 0.0):
            assert torch.equal(tvn.ops.nms(boxes, scores, iou_threshold),
                               torchvision.ops.nms(boxes, scores, iou_threshold))

    def test_matches_cpu_result(self):
        boxes, scores = random_case(5000, torch.float32)
        cpu = tvn.ops.nms(boxes, scores, 0.5)
        gpu = tvn.ops.nms(boxes.cuda(), scores.cuda(), 0.5)
        assert gpu.is_cuda
        assert torch.equal(gpu.cpu(), cpu)

    def test_empty(self):
        out = tvn.ops.nms(torch.empty(0, 4, device="cuda"), torch.empty(0, device="cuda"), 0.5)
        assert out.is_cuda and out.dtype == torch.int64 and out.shape == (0,)

    def test_side_stream(self):
        boxes, scores = random_case(5000, torch.float32)
        ref = torchvision.ops.nms(boxes, scores, 0.5)
        stream = torch.cuda.Stream()
        with torch.cuda.stream(stream):
            b, s = boxes.cuda(non_blocking=True), scores.cuda(non_blocking=True)
            out = tvn.ops.nms(b, s, 0.5)
            out_cpu = out.cpu()
        stream.synchronize()
        assert torch.equal(out_cpu, ref)

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
    def test_half_matches_torchvision_on_upcast(self, dtype):
        # tvops computes half inputs in float32 (torchvision's CUDA half kernel rounds in half).
        boxes, scores = (t.to(dtype).cuda() for t in random_case(5000, torch.float32))
        out = tvn.ops.nms(boxes, scores, 0.5)
        assert out.is_cuda
        assert torch.equal(out, torchvision.ops.nms(boxes.float(), scores.float(), 0.5))

    def test_non_contiguous(self):
        boxes, scores = (t.cuda() for t in random_case(5000, torch.float32))
        ref = torchvision.ops.nms(boxes, scores, 0.5)
        transposed = boxes.t().contiguous().t()
        wide_scores = torch.zeros(2 * len(scores), device="cuda")
        wide_scores[::2] = scores
        assert torch.equal(tvn.ops.nms(transposed, wide_scores[::2], 0.5), ref)

    def test_mixed_devices_raise(self):
        boxes, scores = random_case(10, torch.float32)
        with pytest.raises(RuntimeError):
            tvn.ops.nms(boxes.cuda(), scores, 0.5)
        with pytest.raises(RuntimeError):
            tvn.ops.nms(boxes, scores.cuda(), 0.5)


# ---------------------------------------------------------------------------------------
# Threads and processes.

def test_thread_counts_give_identical_results(isa, num_threads):
    boxes, scores = random_case(5000, torch.float32)
    _, ref = random_reference(5000, torch.float32, 0.5)
    results = {}
    for n in (1, 2):
        tvn.set_num_threads(n)
        assert tvn.num_threads() == n
        results[n] = tvn.ops.nms(boxes, scores, 0.5)
    assert torch.equal(results[1], ref)
    assert torch.equal(results[2], ref)


@pytest.mark.parametrize("bad", [0, -1])
def test_set_num_threads_rejects_non_positive(bad, num_threads):
    with pytest.raises(ValueError, match="at least 1 thread"):
        tvn.set_num_threads(bad)
    assert tvn.num_threads() == num_threads


def test_concurrent_python_threads(isa):
    cases = [random_boxes(3000, seed=40 + i) for i in range(4)]
    refs = [torchvision.ops.nms(b, s, 0.5) for b, s in cases]
    errors, barrier = [], threading.Barrier(len(cases))

    def work(i):
        try:
            barrier.wait()
            for _ in range(10):
                out = tvn.ops.nms(*cases[i], 0.5)
                assert torch.equal(out, refs[i]), f"thread {i} got a wrong result"
                out = tvn.ops.nms(cases[i][0].numpy(), cases[i][1].numpy(), 0.5)
                assert np.array_equal(out, refs[i].numpy()), f"thread {i} got a wrong numpy result"
        except BaseException as e:  # noqa: BLE001 - reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "nms hung in a Python thread"
    assert not errors, errors


def _nms_in_child(queue, seeds):
    try:
        out = []
        for seed in seeds:
            b, s = random_boxes(3000, seed=seed)
            out.append(tvn.ops.nms(b.numpy(), s.numpy(), 0.5).tolist())
        queue.put(("ok", out))
    except BaseException as e:  # noqa: BLE001
        queue.put(("error", repr(e)))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork start method")
def test_fork_after_use(num_threads):
    # Use nms (and its thread pool, with 2 threads) in the parent, then fork.
    tvn.set_num_threads(2)
    seeds = (50, 51)
    expected = [torchvision.ops.nms(*random_boxes(3000, seed=seed), 0.5).tolist() for seed in seeds]
    for seed, exp in zip(seeds, expected):
        assert tvn.ops.nms(*random_boxes(3000, seed=seed), 0.5).tolist() == exp
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_nms_in_child, args=(queue, seeds))
    child.start()
    try:
        status, result = queue.get(timeout=120)
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
    assert status == "ok", result
    assert result == expected
    assert child.exitcode == 0
    # The parent still works after the fork.
    assert tvn.ops.nms(*random_boxes(3000, seed=seeds[0]), 0.5).tolist() == expected[0]
