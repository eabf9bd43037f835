"""deform_conv2d on the CPU against torchvision.ops.deform_conv2d: forward and every
gradient on random shapes (odd sizes, groups, offset groups, stride, padding,
dilation, with and without mask and bias), on every ISA tier; gradcheck in float64;
half types; the module; bad input."""
import numpy as np
import pytest
import torch
import torchvision

import torchvision_native as tvn
from deform_cases import gradcheck_float64, make_case, nan_and_far_offsets


CASES = {
    "groups-offset-groups": dict(),
    "v1-no-bias": dict(mask=False, bias=False, groups=1, og=1, Cin=5, Cout=7),
    "stride2-dil2": dict(N=3, Cin=8, Cout=6, H=13, W=10, kh=3, kw=3, stride=(2, 2), pad=(2, 1), dil=(2, 2), groups=2,
                         og=4),
    "1x1-kernel": dict(Cin=4, Cout=3, kh=1, kw=1, stride=(1, 1), pad=(0, 0), dil=(1, 1), groups=1, og=2),
    # More channels than one 64-wide block and k beyond one 256-wide chunk: the GEMM's
    # blocking edges.
    "wide": dict(N=1, Cin=96, Cout=70, H=12, W=9, kh=3, kw=3, stride=(1, 1), pad=(1, 1), dil=(1, 1), groups=1, og=3),
    "large-offsets": dict(spread=8.0),
}


def run_both(case, grad=True):
    args = {k: (v.clone().requires_grad_(grad) if torch.is_tensor(v) else v) for k, v in case.items()}
    tv_args = {k: (v.clone().detach().requires_grad_(grad) if torch.is_tensor(v) else v) for k, v in case.items()}
    ours = tvn.ops.deform_conv2d(**args)
    ref = torchvision.ops.deform_conv2d(**tv_args)
    return ours, ref, args, tv_args


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_and_gradients_match_torchvision(isa, name, dtype):
    case = make_case(sum(map(ord, name)), dtype=dtype, **CASES[name])
    ours, ref, args, tv_args = run_both(case)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ours, ref, **tol)
    g = torch.randn_like(ref)
    ours.backward(g)
    ref.backward(g)
    for key in ("input", "offset", "weight", "bias", "mask"):
        if args[key] is not None:
            torch.testing.assert_close(args[key].grad, tv_args[key].grad, **tol, msg=lambda m: f"grad of {key}: {m}")


def test_threads_agree(num_threads):
    case = make_case(7, N=2, Cin=32, Cout=32, H=30, W=30, kh=3, kw=3, stride=(1, 1), pad=(1, 1), dil=(1, 1),
                     groups=1, og=1)
    results = []
    for n in (1, 2):
        tvn.set_num_threads(n)
        args = {k: (v.clone().requires_grad_() if torch.is_tensor(v) else v) for k, v in case.items()}
        out = tvn.ops.deform_conv2d(**args)
        out.sum().backward()
        results.append([out] + [args[k].grad for k in ("input", "offset", "weight", "bias", "mask")])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mask", [True, False])
def test_gradcheck_float64(mask):
    assert gradcheck_float64(mask)


def test_batch_of_zero_and_odd_batch():
    case = make_case(4, N=0)
    out = tvn.ops.deform_conv2d(**case)
    assert out.shape == torchvision.ops.deform_conv2d(**case).shape
    case = make_case(5, N=33, Cin=2, Cout=2, H=5, W=5, groups=1, og=1)
    torch.testing.assert_close(tvn.ops.deform_conv2d(**case), torchvision.ops.deform_conv2d(**case))


def test_non_contiguous_and_channels_last_inputs():
    case = make_case(6, N=2, Cin=8, Cout=4, groups=1, og=2)
    ref = torchvision.ops.deform_conv2d(**case)
    nc = dict(case)
    nc["input"] = case["input"].to(memory_format=torch.channels_last)
    nc["offset"] = case["offset"].transpose(2, 3).contiguous().transpose(2, 3)
    nc["weight"] = case["weight"].to(memory_format=torch.channels_last)
    nc["mask"] = case["mask"].permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    torch.testing.assert_close(tvn.ops.deform_conv2d(**nc), ref)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_types_compute_in_float32(isa, dtype):
    case = make_case(8, dtype=torch.float32)
    half = {k: (v.to(dtype) if torch.is_tensor(v) else v) for k, v in case.items()}
    up = {k: (v.float() if torch.is_tensor(v) else v) for k, v in half.items()}
    out = tvn.ops.deform_conv2d(**half)
    assert out.dtype == dtype
    ref = torchvision.ops.deform_conv2d(**up)
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)
    args = {k: (v.clone().requires_grad_() if torch.is_tensor(v) else v) for k, v in half.items()}
    tvn.ops.deform_conv2d(**args).float().sum().backward()
    assert all(args[k].grad.dtype == dtype for k in ("input", "offset", "weight", "bias", "mask"))


def test_nan_offsets_sample_nothing():
    """torchvision casts NaN coordinates to int (undefined behaviour); tvops treats them as
    off the map, exactly like an offset that lands far outside."""
    nan, far = nan_and_far_offsets(make_case(9, groups=1, og=1, Cin=4, Cout=3))
    torch.testing.assert_close(tvn.ops.deform_conv2d(**nan), torchvision.ops.deform_conv2d(**far))


def test_numpy_in_numpy_out():
    case = make_case(10)
    arrays = {k: (v.numpy() if torch.is_tensor(v) else v) for k, v in case.items()}
    out = tvn.ops.deform_conv2d(**arrays)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, torchvision.ops.deform_conv2d(**case).numpy(), rtol=1e-10, atol=1e-10)


def test_module_matches_torchvision_and_loads_its_state_dict():
    torch.manual_seed(0)
    ref = torchvision.ops.DeformConv2d(6, 4, 3, stride=1, padding=1, groups=2)
    ours = tvn.ops.DeformConv2d(6, 4, 3, stride=1, padding=1, groups=2)
    assert ours.state_dict().keys() == ref.state_dict().keys()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 6, 8, 8)
    off = torch.randn(2, 18, 8, 8)
    m = torch.rand(2, 9, 8, 8)
    torch.testing.assert_close(ours(x, off, m), ref(x, off, m), rtol=1e-4, atol=1e-4)
    assert "groups=2" in repr(ours)
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        tvn.ops.DeformConv2d(5, 4, 3, groups=2)
    no_bias = tvn.ops.DeformConv2d(4, 4, 3, bias=False)
    assert no_bias.bias is None and "bias" in dict(no_bias.named_parameters(recurse=False)) or no_bias.bias is None


def bad(**changes):
    case = make_case(11, groups=1, og=1, Cin=4, Cout=4, kh=3, kw=3, stride=(1, 1), pad=(1, 1), dil=(1, 1))
    case.update(changes)
    return case


@pytest.mark.parametrize("changes, error, match", [
    (dict(offset=torch.randn(2, 17, 9, 11, dtype=torch.float64)), RuntimeError, "offset"),
    (dict(offset=torch.randn(2, 27, 9, 11, dtype=torch.float64)), ValueError, "offset.shape\\[1\\] is not valid"),
    (dict(mask=torch.rand(2, 8, 9, 11, dtype=torch.float64)), ValueError, "mask.shape\\[1\\] is not valid"),
    (dict(weight=torch.randn(4, 3, 3, 3, dtype=torch.float64)), ValueError, "groups"),
    (dict(offset=torch.randn(2, 18, 8, 11, dtype=torch.float64)), ValueError, "offset output dims"),
    (dict(offset=torch.randn(3, 18, 9, 11, dtype=torch.float64)), ValueError, "invalid batch size of offset"),
    (dict(mask=torch.rand(3, 9, 9, 11, dtype=torch.float64)), ValueError, "invalid batch size of mask"),
    (dict(weight=torch.randn(4, 4, 3, 3, dtype=torch.float32)), TypeError, "weight should have the input's dtype"),
    (dict(bias=torch.randn(5, dtype=torch.float64)), ValueError, "bias"),
    (dict(padding=(-1, 0)), ValueError, "pad"),
    (dict(stride=(0, 1)), ValueError, "stride"),
    (dict(input=torch.randn(2, 4, 9, dtype=torch.float64)), ValueError, "input should be a 4d tensor"),
    (dict(input=torch.randint(0, 9, (2, 4, 9, 11))), TypeError, "floating point"),
])
def test_bad_input_raises(changes, error, match):
    with pytest.raises(error, match=match):
        tvn.ops.deform_conv2d(**bad(**changes))


def test_output_too_small_raises():
    case = make_case(12, H=2, W=2, kh=3, kw=3, pad=(0, 0), stride=(1, 1), dil=(1, 1), groups=1, og=1)
    case["offset"] = torch.zeros(2, 18, 1, 1, dtype=torch.float64)
    case["mask"] = None
    with pytest.raises(ValueError, match="Calculated output size too small|offset output dims"):
        tvn.ops.deform_conv2d(**case)


def test_int8_path_is_close_to_float_and_identical_on_every_tier():
    """deform_conv2d_int8: u8 columns x s8 per-channel weights, integer sums (vpdpbusd on
    avx512vnni); the double-precision op is the reference. With 144 products per output
    (per-tensor activation scale, 8 bits) the error is a few percent of the mean output;
    PERF.md's dcn-s / dcn-l (576 and 2304 products) measure ~1.3%."""
    case = make_case(13, N=2, Cin=32, Cout=24, H=17, W=15, kh=3, kw=3, stride=(1, 1), pad=(1, 1), dil=(1, 1),
                     groups=2, og=2, dtype=torch.float32)
    ref = torchvision.ops.deform_conv2d(**{k: (v.double() if torch.is_tensor(v) else v) for k, v in case.items()})
    results, previous = {}, tvn.active_cpu_isa()
    try:
        for tier in tvn.available_cpu_isas():
            tvn.set_cpu_isa(tier)
            results[tier] = tvn.ops.deform_conv2d_int8(**case)
    finally:
        tvn.set_cpu_isa(previous)
    first = next(iter(results.values()))
    assert first.dtype == torch.float32
    assert all(torch.equal(first, r) for r in results.values())
    err = (first.double() - ref).abs()
    assert err.max() <= 0.05 * ref.abs().max()
    assert err.mean() <= 0.04 * ref.abs().mean()
