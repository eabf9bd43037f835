"""tvn.ops.MultiScaleRoIAlign against torchvision.ops.MultiScaleRoIAlign: the fused
native call must give torchvision's values and feature-map gradients exactly."""
from collections import OrderedDict

import pytest
import torch
import torchvision

import torchvision_native as tvn

NAMES = ["feat1", "feat2", "feat3", "feat4"]


def pyramid(c=8, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    sizes = [(100, 152), (50, 76), (25, 38), (13, 19)]
    return OrderedDict((n, torch.randn(2, c, h, w, generator=g, dtype=torch.float64).to(dtype))
                       for n, (h, w) in zip(NAMES, sizes))


def boxes(n, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 350
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) ** 2 * 300 + 1
    return torch.cat([xy, xy + wh], 1).to(dtype)


SHAPES = [(400, 608), (390, 600)]


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
@pytest.mark.parametrize("names,output_size,sampling_ratio", [
    (NAMES, 7, 2), (NAMES[:3], (5, 3), -1), (["feat2"], 4, 0), (["feat4", "feat1"], 3, 1)])
def test_matches_torchvision_forward_and_backward(isa, names, output_size, sampling_ratio, dtype):
    feats = pyramid(dtype=dtype)
    b = [boxes(80, 1, dtype), boxes(45, 3, dtype)]
    shapes = SHAPES
    ref_m = torchvision.ops.MultiScaleRoIAlign(names, output_size, sampling_ratio)
    our_m = tvn.ops.MultiScaleRoIAlign(names, output_size, sampling_ratio)
    fr = OrderedDict((k, v.clone().requires_grad_()) for k, v in feats.items())
    fo = OrderedDict((k, v.clone().requires_grad_()) for k, v in feats.items())
    ref, out = ref_m(fr, b, shapes), our_m(fo, b, shapes)
    assert out.dtype == ref.dtype and torch.equal(out, ref)
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64).to(dtype)
    ref.backward(grad)
    out.backward(grad)
    for k in names:
        assert torch.equal(fo[k].grad, fr[k].grad), k
    assert repr(our_m) == repr(ref_m)


def test_an_image_without_boxes():
    feats = pyramid()
    b = [boxes(0, 7), boxes(20, 8)]
    ref = torchvision.ops.MultiScaleRoIAlign(NAMES, 7, 2)(feats, b, SHAPES)
    assert torch.equal(tvn.ops.MultiScaleRoIAlign(NAMES, 7, 2)(feats, b, SHAPES), ref)


def test_scales_are_cached_like_torchvision():
    feats = pyramid()
    m = tvn.ops.MultiScaleRoIAlign(NAMES, 7, 2)
    m(feats, [boxes(10, 5)], SHAPES)
    assert m.scales == [0.25, 0.125, 0.0625, 0.03125]


def test_bad_input():
    m = tvn.ops.MultiScaleRoIAlign(NAMES, 7, 2)
    with pytest.raises(ValueError, match="images list should not be empty"):
        m(pyramid(), [boxes(3, 6)], [])
