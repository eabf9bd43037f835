"""tvn.ops.batched_nms against torchvision.ops.batched_nms on every CPU ISA tier.

torchvision uses its coordinate-offset trick up to 1000 boxes (4000 coordinates) on the
CPU and per-class nms above; both sides of the switch are compared. Where scores are
distinct the indices must be identical; with tied scores torchvision's final order comes
from an unstable sort, so there the kept set and the score sequence must match and tvops
puts ties in index order.
"""
import math

import numpy as np
import pytest
import torch
import torchvision

import torchvision_native as tvn
from boxes import random_boxes, tied_scores
from conftest import requires_cuda

SWITCH_SIZES = (0, 1, 10, 999, 1000, 1001, 5000, 20000)


def case(n, classes, seed=0, dtype=torch.float32, distinct=True):
    boxes, scores = random_boxes(n, seed=seed, dtype=dtype)
    g = torch.Generator().manual_seed(seed + 7)
    if distinct:  # a permutation: no two scores equal
        scores = (torch.randperm(n, generator=g).to(torch.float64) / max(n, 1)).to(dtype)
    idxs = torch.randint(0, max(classes, 1), (n,), generator=g)
    return boxes, scores, idxs


def assert_same_kept(out, ref, scores):
    """Same kept boxes, same score sequence, and ties in index order."""
    assert torch.equal(out.sort()[0], ref.sort()[0])
    assert torch.equal(scores[out], scores[ref])
    s = scores[out]
    for a in range(len(out) - 1):
        if s[a] == s[a + 1]:
            assert out[a] < out[a + 1]


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
@pytest.mark.parametrize("classes", (1, 3, 80))
@pytest.mark.parametrize("n", SWITCH_SIZES)
def test_matches_torchvision_across_the_strategy_switch(isa, n, classes, dtype):
    boxes, scores, idxs = case(n, classes, seed=n + classes, dtype=dtype)
    for thr in (0.3, 0.5, 0.7):
        ref = torchvision.ops.batched_nms(boxes, scores, idxs, thr)
        out = tvn.ops.batched_nms(boxes, scores, idxs, thr)
        assert out.dtype == torch.int64
        assert torch.equal(out, ref), f"n={n} classes={classes} thr={thr}"


@pytest.mark.parametrize("n", (500, 5000))
def test_tied_scores(isa, n):
    boxes, _, idxs = case(n, 5, seed=3)
    scores = tied_scores(n, 7, seed=4)
    ref = torchvision.ops.batched_nms(boxes, scores, idxs, 0.5)
    assert_same_kept(tvn.ops.batched_nms(boxes, scores, idxs, 0.5), ref, scores)


@pytest.mark.parametrize("idx_dtype", (torch.int64, torch.int32, torch.int16, torch.uint8, torch.bool,
                                       torch.float32, torch.float64))
@pytest.mark.parametrize("n", (300, 3000))
def test_category_dtypes(isa, n, idx_dtype):
    boxes, scores, idxs = case(n, 4, seed=11)
    idxs = idxs.to(idx_dtype)
    ref = torchvision.ops.batched_nms(boxes, scores, idxs, 0.5)
    assert torch.equal(tvn.ops.batched_nms(boxes, scores, idxs, 0.5), ref)


@pytest.mark.parametrize("n", (300, 3000))
def test_odd_categories(isa, n):
    # Negative, huge and fractional category values, and NaN categories: below the
    # switch torchvision's offset becomes NaN (boxes kept), above it they match no
    # category and are dropped.
    boxes, scores, idxs = case(n, 4, seed=12)
    for values in ([-5.0, 0.0, 1e9, 2.0], [0.5, 1.5, -2.25, 3.0], [0.0, 1.0, math.nan, 2.0]):
        cat = torch.tensor(values, dtype=torch.float64)[idxs % 4]
        ref = torchvision.ops.batched_nms(boxes.double(), scores.double(), cat, 0.5)
        assert torch.equal(tvn.ops.batched_nms(boxes.double(), scores.double(), cat, 0.5), ref), values


def test_numpy_in_numpy_out(isa):
    boxes, scores, idxs = case(3000, 10, seed=5)
    out = tvn.ops.batched_nms(boxes.numpy(), scores.numpy(), idxs.numpy(), 0.5)
    assert isinstance(out, np.ndarray) and out.dtype == np.int64
    assert np.array_equal(out, torchvision.ops.batched_nms(boxes, scores, idxs, 0.5).numpy())


def test_threads_do_not_change_the_result(num_threads):
    boxes, scores, idxs = case(20000, 80, seed=6)
    results = []
    for t in (1, 2):
        tvn.set_num_threads(t)
        results.append(tvn.ops.batched_nms(boxes, scores, idxs, 0.5))
    assert torch.equal(results[0], results[1])
    assert torch.equal(results[0], torchvision.ops.batched_nms(boxes, scores, idxs, 0.5))


def test_half_inputs_match_torchvision_on_float32():
    boxes, scores, idxs = case(3000, 10, seed=8)
    for dtype in (torch.float16, torch.bfloat16):
        b, s = boxes.to(dtype), scores.to(dtype)
        ref = torchvision.ops.batched_nms(b.float(), s.float(), idxs, 0.5)
        assert_same_kept(tvn.ops.batched_nms(b, s, idxs, 0.5), ref, s.float())


@pytest.mark.parametrize("bad_idxs, match", [
    (torch.zeros(9, dtype=torch.int64), "idxs should be a 1d tensor with one category per box"),
    (torch.zeros(10, 1, dtype=torch.int64), "idxs should be a 1d tensor"),
])
def test_bad_categories(bad_idxs, match):
    boxes, scores, _ = case(10, 2)
    with pytest.raises(RuntimeError, match=match):
        tvn.ops.batched_nms(boxes, scores, bad_idxs, 0.5)


def test_bad_boxes_use_nms_messages():
    boxes, scores, idxs = case(10, 2)
    with pytest.raises(RuntimeError, match="batched_nms: boxes should have 4 elements in dimension 1"):
        tvn.ops.batched_nms(boxes[:, :3], scores, idxs, 0.5)
    with pytest.raises(TypeError):
        tvn.ops.batched_nms(boxes, scores.double(), idxs, 0.5)


@pytest.mark.cuda
@requires_cuda
class TestCuda:
    # torchvision's CUDA batched_nms: coordinate trick up to 100k coordinates (25000
    # boxes), per-class nms above; both sides of the switch.
    @pytest.mark.parametrize("n", (1000, 20000, 25000, 25001, 30000, 200000))
    @pytest.mark.parametrize("dtype", (torch.float32, torch.float64), ids=str)
    def test_matches_torchvision_cuda(self, n, dtype):
        boxes, scores, idxs = (t.cuda() for t in case(n, 80, seed=9, dtype=dtype))
        for thr in (0.5, 0.2):
            out = tvn.ops.batched_nms(boxes, scores, idxs, thr)
            assert out.is_cuda
            assert torch.equal(out, torchvision.ops.batched_nms(boxes, scores, idxs, thr)), thr

    @pytest.mark.parametrize("n", (3000, 30000))
    @pytest.mark.parametrize("idx_dtype", (torch.int32, torch.float32, torch.float64), ids=str)
    def test_category_dtypes_and_nan_categories_cuda(self, n, idx_dtype):
        boxes, scores, idxs = case(n, 7, seed=5)
        idxs = idxs.to(idx_dtype)
        if idx_dtype.is_floating_point:
            idxs[::11] = float("nan")  # dropped by per-class nms, kept by the coordinate trick
            idxs[1::13] = -2.5
        ref = torchvision.ops.batched_nms(boxes.cuda(), scores.cuda(), idxs.cuda(), 0.5)
        out = tvn.ops.batched_nms(boxes.cuda(), scores.cuda(), idxs.cuda(), 0.5)
        assert torch.equal(out, ref)

    def test_tied_scores_cuda(self):
        boxes, _, idxs = case(30000, 5, seed=3)
        scores = tied_scores(30000, 7, seed=4)
        ref = torchvision.ops.batched_nms(boxes.cuda(), scores.cuda(), idxs.cuda(), 0.5)
        out = tvn.ops.batched_nms(boxes.cuda(), scores.cuda(), idxs.cuda(), 0.5)
        assert_same_kept(out.cpu(), ref.cpu(), scores)


@pytest.mark.cuda
@requires_cuda
def test_cuda_bad_categories_raise():
    boxes, scores, idxs = (t.cuda() for t in case(100, 3, seed=2))
    with pytest.raises(TypeError, match="int64, int32, float32 or float64"):
        tvn.ops.batched_nms(boxes, scores, idxs.to(torch.int16), 0.5)
    with pytest.raises(RuntimeError, match="idxs must be on the boxes' device"):
        tvn.ops.batched_nms(boxes, scores, idxs.cpu(), 0.5)
    assert torch.equal(tvn.ops.batched_nms(boxes, scores, idxs, 0.5),
                       torchvision.ops.batched_nms(boxes, scores, idxs, 0.5))
