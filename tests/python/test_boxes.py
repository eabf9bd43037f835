"""Box utilities of tvn.ops against torchvision.ops (the reference), on every CPU ISA tier.

Float results must match within a few ulps (torchvision computes through torch's
elementwise kernels; tvops fuses them); degenerate boxes give NaN where torchvision does.
"""
import numpy as np
import pytest
import torch
import torchvision

import torchvision_native as tvn
from boxes import random_boxes

PAIRWISE = ("box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou")
FORMATS = ("xyxy", "xywh", "cxcywh")


def close(out, ref, rtol=None, atol=None):
    assert out.dtype == ref.dtype, (out.dtype, ref.dtype)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=rtol, atol=atol, equal_nan=True)


def boxes_of(n, seed, dtype=torch.float32):
    return random_boxes(n, seed=seed, dtype=torch.float64)[0].to(dtype)


def degenerate_boxes(dtype=torch.float32):
    # Zero-area, inverted, identical, touching and far-apart boxes.
    return torch.tensor([[0, 0, 0, 0], [5, 5, 5, 9], [10, 10, 0, 0], [0, 0, 10, 10], [0, 0, 10, 10],
                         [10, 0, 20, 10], [1e4, 1e4, 1e4 + 1, 1e4 + 1]], dtype=torch.float64).to(dtype)


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
@pytest.mark.parametrize("op", PAIRWISE)
def test_pairwise_matches_torchvision(isa, op, dtype):
    a, b = boxes_of(301, 1, dtype), boxes_of(77, 2, dtype)  # odd sizes: vector tails
    close(getattr(tvn.ops, op)(a, b), getattr(torchvision.ops, op)(a, b))


@pytest.mark.parametrize("op", PAIRWISE)
def test_pairwise_degenerate_boxes(isa, op):
    d = degenerate_boxes()
    close(getattr(tvn.ops, op)(d, d), getattr(torchvision.ops, op)(d, d))


@pytest.mark.parametrize("op", PAIRWISE)
def test_pairwise_batched_leading_dims(op):
    a = boxes_of(2 * 3 * 17, 3).reshape(2, 3, 17, 4)
    b = boxes_of(2 * 3 * 9, 4).reshape(2, 3, 9, 4)
    close(getattr(tvn.ops, op)(a, b), getattr(torchvision.ops, op)(a, b))


@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16))
@pytest.mark.parametrize("op", PAIRWISE)
def test_pairwise_half_inputs_give_float32(op, dtype):
    # tvops computes half boxes in float32 throughout (torchvision takes corner
    # differences in half first): the reference is torchvision on float32 copies.
    a, b = boxes_of(40, 5, dtype), boxes_of(30, 6, dtype)
    close(getattr(tvn.ops, op)(a, b), getattr(torchvision.ops, op)(a.float(), b.float()))


@pytest.mark.parametrize("dtype", (torch.int64, torch.int32, torch.uint8))
def test_box_iou_integer_boxes(dtype):
    # Reference on int64 copies: torchvision's uint8 corner differences wrap around
    # before its upcast (a torchvision bug tvops does not copy).
    a = (boxes_of(50, 7) / 8).to(dtype)
    b = (boxes_of(40, 8) / 8).to(dtype)
    close(tvn.ops.box_iou(a, b), torchvision.ops.box_iou(a.long(), b.long()))


@pytest.mark.parametrize("fmt", FORMATS)
def test_box_iou_formats(isa, fmt):
    a, b = boxes_of(64, 9), boxes_of(33, 10)
    a, b = torchvision.ops.box_convert(a, "xyxy", fmt), torchvision.ops.box_convert(b, "xyxy", fmt)
    close(tvn.ops.box_iou(a, b, fmt=fmt), torchvision.ops.box_iou(a, b, fmt=fmt), rtol=1e-5, atol=1e-6)


def test_pairwise_empty():
    e, a = torch.zeros(0, 4), boxes_of(5, 11)
    for op in PAIRWISE:
        close(getattr(tvn.ops, op)(e, a), getattr(torchvision.ops, op)(e, a))
        close(getattr(tvn.ops, op)(a, e), getattr(torchvision.ops, op)(a, e))


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64))
@pytest.mark.parametrize("out_fmt", FORMATS)
@pytest.mark.parametrize("in_fmt", FORMATS)
def test_box_convert(in_fmt, out_fmt, dtype):
    b = (boxes_of(50, 12) if dtype.is_floating_point else boxes_of(50, 12).round()).to(dtype).reshape(5, 10, 4)
    ref = torchvision.ops.box_convert(b, in_fmt, out_fmt)
    out = tvn.ops.box_convert(b, in_fmt, out_fmt)
    # torch rounds half results after every op, tvops once: allow a half ulp or two.
    tol = dict(rtol=2e-3, atol=1e-2) if dtype in (torch.float16, torch.bfloat16) else {}
    if dtype == torch.bfloat16:
        tol = dict(rtol=1e-2, atol=4.0)
    close(out, ref, **tol)


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64, torch.float16, torch.int64, torch.int16))
@pytest.mark.parametrize("fmt", FORMATS)
def test_box_area(fmt, dtype):
    b = (boxes_of(60, 13) if dtype.is_floating_point else boxes_of(60, 13).round()).to(dtype).reshape(3, 20, 4)
    close(tvn.ops.box_area(b, fmt=fmt), torchvision.ops.box_area(b, fmt=fmt), rtol=1e-3 if dtype == torch.float16
          else None, atol=1e-2 if dtype == torch.float16 else None)


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64, torch.int64))
def test_clip_boxes_to_image(dtype):
    b = (boxes_of(100, 14) - 300).to(dtype).reshape(4, 25, 4)
    close(tvn.ops.clip_boxes_to_image(b, (480, 640)), torchvision.ops.clip_boxes_to_image(b, (480, 640)))
    nan = torch.tensor([[float("nan"), -1.0, 1e9, 5.0]])
    close(tvn.ops.clip_boxes_to_image(nan, (10, 20)), torchvision.ops.clip_boxes_to_image(nan, (10, 20)))


@pytest.mark.parametrize("min_size", (0.0, 50.0, 150.0, 1e9))
def test_remove_small_boxes(min_size):
    b = torch.cat([boxes_of(200, 15), degenerate_boxes()])
    assert torch.equal(tvn.ops.remove_small_boxes(b, min_size), torchvision.ops.remove_small_boxes(b, min_size))


def rounding_edge_boxes():
    # Sides that meet min_size only in the boxes' dtype: 100.1f - 0.1f rounds to 100 in
    # float32 (99.9999985 in float64), and 0.7f is below 0.7 in float64 but equal to
    # min_size once torch casts it to float32.
    return torch.tensor([[0.1, 0.0, 100.1, 100.1], [0.0, 0.0, 0.7, 0.7], [3.0, 3.0, 10.0, 10.0],
                         [0.0, 0.0, 99.95, 120.0]], dtype=torch.float64)


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int32))
def test_remove_small_boxes_compares_in_the_boxes_dtype(dtype):
    b = rounding_edge_boxes()
    b = (b * 10).to(dtype) if dtype == torch.int32 else b.to(dtype)
    for min_size in (100.0, 0.7, 7.0, 70.0, 999.5):
        assert torch.equal(tvn.ops.remove_small_boxes(b, min_size), torchvision.ops.remove_small_boxes(b, min_size)), \
            min_size


def test_remove_small_boxes_of_no_boxes():
    for dtype in (torch.float32, torch.float64, torch.float16):
        out = tvn.ops.remove_small_boxes(torch.zeros(0, 4, dtype=dtype), 1.0)
        assert out.dtype == torch.int64 and out.shape == (0,)


def test_strided_boxes():
    # Boxes sliced out of [K, 5] rois (as MultiScaleRoIAlign's callers pass them): a row
    # stride of 5 and a storage offset.
    rois = torch.cat([torch.zeros(60, 1, dtype=torch.float64), random_boxes(60, dtype=torch.float64)[0]], 1)
    boxes = rois[:, 1:]
    assert not boxes.is_contiguous()
    close(tvn.ops.box_area(boxes), torchvision.ops.box_area(boxes))
    close(tvn.ops.box_convert(boxes, "xyxy", "cxcywh"), torchvision.ops.box_convert(boxes, "xyxy", "cxcywh"))
    close(tvn.ops.clip_boxes_to_image(boxes, (300, 400)), torchvision.ops.clip_boxes_to_image(boxes, (300, 400)))
    assert torch.equal(tvn.ops.remove_small_boxes(boxes, 100.0), torchvision.ops.remove_small_boxes(boxes, 100.0))
    for op in PAIRWISE:
        close(getattr(tvn.ops, op)(boxes[:20], boxes[10:]), getattr(torchvision.ops, op)(boxes[:20], boxes[10:]))
    np.testing.assert_allclose(tvn.ops.box_area(rois.numpy()[:, 1:]), torchvision.ops.box_area(boxes).numpy())


def test_numpy_in_numpy_out():
    a, b = boxes_of(20, 16), boxes_of(10, 17)
    out = tvn.ops.box_iou(a.numpy(), b.numpy())
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, torchvision.ops.box_iou(a, b).numpy(), rtol=1e-6)
    assert isinstance(tvn.ops.box_area(a.numpy()), np.ndarray)


def test_bad_input():
    a = boxes_of(5, 18)
    with pytest.raises(RuntimeError, match=r"boxes1 should have shape \[\.\.\., 4\]"):
        tvn.ops.box_iou(a[:, :3], a)
    with pytest.raises(RuntimeError, match="leading dims"):
        tvn.ops.box_iou(a.reshape(1, 5, 4), a.reshape(5, 1, 4))
    with pytest.raises(ValueError, match="Unsupported Bounding Box Conversions"):
        tvn.ops.box_convert(a, "xyxy", "polar")
    with pytest.raises(ValueError):
        tvn.ops.box_area(a, fmt="polar")
    with pytest.raises(NotImplementedError):
        tvn.ops.box_convert(a, "xyxy", "cxcywhr")
    with pytest.raises(NotImplementedError):
        tvn.ops.box_iou(a, a, fmt="xyxyxyxy")
    with pytest.raises(RuntimeError, match="should be \\[N, 4\\]"):
        tvn.ops.remove_small_boxes(a.reshape(1, 5, 4), 1.0)


def test_gradients_are_refused_not_dropped():
    a = boxes_of(5, 19).requires_grad_()
    with pytest.raises(NotImplementedError, match="autograd"):
        tvn.ops.generalized_box_iou(a, a)
    with torch.no_grad():
        close(tvn.ops.generalized_box_iou(a, a), torchvision.ops.generalized_box_iou(a, a))


# ---------------------------------------------------------------------------------------
# CUDA (skipped without a GPU): float32/float64 boxes on the device, against torchvision's
# CUDA results.

@pytest.mark.cuda
class TestCuda:
    @pytest.mark.parametrize("dtype", (torch.float32, torch.float64), ids=str)
    @pytest.mark.parametrize("op", PAIRWISE)
    def test_pairwise(self, op, dtype):
        a, b = boxes_of(301, 1, dtype).cuda(), boxes_of(77, 2, dtype).cuda()
        out = getattr(tvn.ops, op)(a, b)
        assert out.is_cuda
        close(out, getattr(torchvision.ops, op)(a, b))
        d = degenerate_boxes(dtype).cuda()
        close(getattr(tvn.ops, op)(d, d), getattr(torchvision.ops, op)(d, d))
        ab, bb = a[:60].reshape(3, 20, 4), b[:45].reshape(3, 15, 4)  # leading dims
        close(getattr(tvn.ops, op)(ab, bb), getattr(torchvision.ops, op)(ab, bb))

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_box_iou_formats(self, fmt):
        a, b = boxes_of(50, 3).cuda(), boxes_of(40, 4).cuda()
        close(tvn.ops.box_iou(a, b, fmt=fmt), torchvision.ops.box_iou(a, b, fmt=fmt))

    @pytest.mark.parametrize("dtype", (torch.float32, torch.float64), ids=str)
    @pytest.mark.parametrize("in_fmt", FORMATS)
    @pytest.mark.parametrize("out_fmt", FORMATS)
    def test_box_convert(self, in_fmt, out_fmt, dtype):
        b = boxes_of(1000, 5, dtype).cuda()
        close(tvn.ops.box_convert(b, in_fmt, out_fmt), torchvision.ops.box_convert(b, in_fmt, out_fmt))

    @pytest.mark.parametrize("dtype", (torch.float32, torch.float64), ids=str)
    def test_area_clip_and_small_boxes(self, dtype):
        b = torch.cat([boxes_of(1000, 6, dtype), degenerate_boxes(dtype)]).cuda()
        b[::17, 0] = float("nan")
        close(tvn.ops.box_area(b), torchvision.ops.box_area(b))
        close(tvn.ops.clip_boxes_to_image(b, (600, 800)), torchvision.ops.clip_boxes_to_image(b, (600, 800)))
        for min_size in (0.0, 50.0, 1e9):
            out = tvn.ops.remove_small_boxes(b, min_size)
            assert out.is_cuda
            assert torch.equal(out, torchvision.ops.remove_small_boxes(b, min_size))
        none = tvn.ops.remove_small_boxes(b[:0], 1.0)
        assert none.is_cuda and none.dtype == torch.int64 and none.shape == (0,)
        edge = rounding_edge_boxes().to(dtype).cuda()
        for min_size in (100.0, 0.7, 7.0):
            assert torch.equal(tvn.ops.remove_small_boxes(edge, min_size),
                               torchvision.ops.remove_small_boxes(edge, min_size)), min_size

    def test_unsupported_dtypes_and_mixed_devices_raise(self):
        b = boxes_of(10, 7).cuda()
        with pytest.raises(RuntimeError, match="float32 or float64"):
            tvn.ops.box_iou(b.half(), b.half())
        with pytest.raises(RuntimeError, match="same device"):
            tvn.ops.box_iou(b, b.cpu())
