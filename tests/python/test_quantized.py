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


@pytest.mark.parametrize("channels", (64, 80, 200))
@pytest.mark.parametrize("sampling_ratio", (2, -1))
def test_quantized_roi_align_wide_maps(isa, channels, sampling_ratio):
    # Wide enough for the 64-channel vpdpbusd blocks plus a scalar tail; adaptive grids
    # of large boxes take more than the 256 samples a bin that one int32 flush holds.
    g = torch.Generator().manual_seed(5)
    x = quantize(torch.rand(1, channels, 24, 40, generator=g) * 6 - 3, 0.03, 100, torch.quint8)
    boxes, _ = random_boxes(60, seed=6, origin=60.0, max_size=140.0)
    rois = quantize(torch.cat([torch.zeros(60, 1), boxes], 1), 0.05, 0, torch.quint8)
    ref = torchvision.ops.roi_align(x, rois, 3, 0.25, sampling_ratio, True)
    out = tvn.ops.roi_align(x, rois, 3, 0.25, sampling_ratio, True)
    diff = (out.int_repr().int() - ref.int_repr().int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() <= 0.05


def test_quantized_roi_align_same_bytes_on_every_isa():
    g = torch.Generator().manual_seed(7)
    x = quantize(torch.randn(1, 96, 16, 16, generator=g), 0.02, 120, torch.quint8)
    boxes, _ = random_boxes(40, seed=8, origin=40.0, max_size=30.0)
    rois = torch.cat([torch.zeros(40, 1), boxes], 1)
    previous = tvn.active_cpu_isa()
    try:
        outs = []
        for isa in tvn.available_cpu_isas():
            tvn.set_cpu_isa(isa)
            outs.append(tvn.ops.roi_align(x, rois, 5, 0.4, 2, False).int_repr())
    finally:
        tvn.set_cpu_isa(previous)
    assert all(torch.equal(o, outs[0]) for o in outs)
