"""Quantized nms and roi_align (torchvision's QuantizedCPU kernels) against torchvision."""
import warnings

import pytest
import torch
import torchvision

import torchvision_native as tvn
from boxes import random_boxes

warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated")


def quantize(t, scale, zero_point, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.quantize_per_tensor(t, scale, zero_point, dtype)


@pytest.mark.parametrize("dtype", (torch.quint8, torch.qint8, torch.qint32))
@pytest.mark.parametrize("threshold", (0.3, 0.5, 0.8))
def test_quantized_nms_identical(isa, dtype, threshold):
    boxes, scores = random_boxes(600, seed=2, origin=100.0, max_size=40.0)
    zero = 0 if dtype == torch.qint8 else 3
    qb, qs = quantize(boxes, 0.6, zero, dtype), quantize(scores, 0.01, 0, dtype)
    assert torch.equal(tvn.ops.nms(qb, qs, threshold), torchvision.ops.nms(qb, qs, threshold))


@pytest.mark.parametrize("aligned", (True, False))
def test_quantized_roi_align_within_one_quantum(isa, aligned):
    g = torch.Generator().manual_seed(3)
    x = quantize(torch.randn(1, 16, 20, 30, generator=g), 0.05, 128, torch.quint8)
    boxes, _ = random_boxes(80, seed=4, origin=100.0, max_size=60.0)
    rois = quantize(torch.cat([torch.zeros(80, 1), boxes * 0.9], 1), 0.05, 0, torch.quint8)
    ref = torchvision.ops.roi_align(x, rois, 3, 0.25, 2, aligned)
    out = tvn.ops.roi_align(x, rois, 3, 0.25, 2, aligned)
    assert out.dtype == ref.dtype and out.q_scale() == ref.q_scale() and out.q_zero_point() == ref.q_zero_point()
    diff = (out.int_repr().int() - ref.int_repr().int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() <= 0.05  # torchvision's own tolerance


def test_quantized_roi_align_one_image_only():
    x = quantize(torch.randn(2, 4, 8, 8), 0.05, 128, torch.quint8)
    rois = quantize(torch.tensor([[0.0, 1, 1, 5, 5]]), 0.05, 0, torch.quint8)
    with pytest.raises(RuntimeError, match="Only one image per batch"):
        tvn.ops.roi_align(x, rois, 3)
