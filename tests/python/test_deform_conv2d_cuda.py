"""CUDA deform_conv2d against torchvision's CUDA deform_conv2d: forward and every
gradient on random shapes (odd sizes, groups, offset groups that split a run of
channels, stride, padding, dilation, with and without mask and bias, the 128-wide
tiles and their edges), in each product mode:

  * float64: CUDA cores, against torchvision float64 (tight);
  * float32 with allow_tf32=False (3xTF32 on tensor cores): against torchvision float32
    (float32 accuracy);
  * float32 with allow_tf32=True (torch.backends.cudnn.allow_tf32, the default): against
    torchvision float32 with the tolerance of TF32 operands;
  * float16 and bfloat16: against torchvision float64 on the same (upcast) inputs, with
    the tolerance of the operand rounding (torchvision has no bfloat16 kernel).

Plus gradcheck in float64, NaN offsets, the caller's stream and CUDA-graph capture
(which fails on any host synchronisation).
"""
import contextlib

import pytest
import torch
import torchvision

import torchvision_native as tvn
from cuda_graphs import assert_graph_replay_matches_eager
import deform_cases
from deform_cases import gradcheck_float64, nan_and_far_offsets

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason="needs a CUDA device (torch.cuda.is_available() is False)")]

DEV = "cuda"
NAMES = ("input", "offset", "weight", "bias", "mask")


def make_case(seed, **kw):
    """float64 CUDA tensors (callers cast them)."""
    return deform_cases.make_case(seed, device=DEV, **kw)


CASES = {
    "groups-offset-groups": dict(),  # 2 channels an offset group: runs cross groups
    "v1-no-bias": dict(mask=False, bias=False, groups=1, og=1, Cin=5, Cout=7),
    "stride2-dil2": dict(N=3, Cin=8, Cout=6, H=13, W=10, kh=3, kw=3, stride=(2, 2), pad=(2, 1), dil=(2, 2), groups=2,
                         og=4),
    "1x1-kernel": dict(Cin=4, Cout=3, kh=1, kw=1, stride=(1, 1), pad=(0, 0), dil=(1, 1), groups=1, og=2),
    "depthwise": dict(N=2, Cin=8, Cout=8, H=7, W=6, kh=3, kw=3, stride=(1, 1), pad=(1, 1), dil=(1, 1), groups=8,
                      og=8),
    "odd": dict(N=5, Cin=33, Cout=17, H=17, W=23, kh=5, kw=3, stride=(2, 1), pad=(2, 1), dil=(1, 2), groups=1, og=3),
    # 128-wide tiles (more than 64 channels a group) with partial tiles on every edge
    "wide": dict(N=2, Cin=136, Cout=130, H=13, W=11, kh=3, kw=3, stride=(1, 1), pad=(1, 1), dil=(1, 1), groups=1,
                 og=1, spread=1.0),
    "wide-groups": dict(N=3, Cin=160, Cout=144, H=9, W=10, kh=3, kw=3, stride=(1, 1), pad=(1, 1), dil=(1, 1),
                        groups=2, og=4, spread=1.0),  # 40 channels an offset group: crosses 16-channel runs
    "many-pixels": dict(N=4, Cin=64, Cout=64, H=40, W=37, kh=3, kw=3, stride=(1, 1), pad=(1, 1), dil=(1, 1),
                        groups=1, og=1, spread=1.0),
    "large-offsets": dict(spread=8.0),
    # the 64 x 256 forward tile with a 5x3 kernel (its tap table holds 9 taps: two windows)
    # and one offset group a 32-channel chunk (the table is remade for every chunk)
    "widest-5x3-offset-groups": dict(N=2, Cin=64, Cout=136, H=9, W=8, kh=5, kw=3, stride=(1, 1), pad=(2, 1),
                                     dil=(1, 1), groups=1, og=2, spread=1.0),
    # forward blocks as 8 x 8 (64 x 256 tiles) and 16 x 8 (128 x 128 tiles) pixel patches,
    # partial patches on the right and bottom edges
    "patches-8x8": dict(N=2, Cin=40, Cout=136, H=35, W=37, kh=3, kw=3, stride=(1, 1), pad=(1, 1), dil=(1, 1),
                        groups=1, og=2, spread=1.0),
    "patches-16x8": dict(N=1, Cin=32, Cout=96, H=33, W=70, kh=3, kw=3, stride=(1, 1), pad=(1, 1), dil=(1, 1),
                         groups=1, og=1, spread=2.0),
}


@contextlib.contextmanager
def tf32(allow):
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous


def run(module, case, dtype, grad_out):
    """Output and gradients of `module`.ops.deform_conv2d on `case` cast to dtype."""
    args = {k: (v.to(dtype).detach().requires_grad_() if torch.is_tensor(v) else v) for k, v in case.items()}
    out = module.ops.deform_conv2d(**args)
    out.backward(grad_out.to(dtype))
    return [out] + [args[k].grad if args[k] is not None else None for k in NAMES]


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-300)).item()


def check(ours, ref, tol, elementwise_rtol=None, what=""):
    labels = ("output",) + NAMES
    for label, o, r in zip(labels, ours, ref):
        if r is None:
            assert o is None or label == "bias", f"{what} {label}"
            continue
        assert o is not None and o.shape == r.shape, f"{what} {label}"
        assert torch.isfinite(o).all(), f"{what} {label}: not finite"
        err = rel(o, r)
        assert err < tol, f"{what} {label}: relative error {err:.2e} >= {tol:.0e}"
        if elementwise_rtol is not None:
            scale = r.double().abs().max().item()
            torch.testing.assert_close(o.double(), r.double(), rtol=elementwise_rtol, atol=elementwise_rtol * scale,
                                       msg=lambda m: f"{what} {label}: {m}")


# dtype, allow_tf32, reference dtype, relative-norm tolerance, elementwise rtol (times
# max|ref| as atol). float32 is checked against torchvision's float32, which computes the
# sampling coordinates in float32 as tvops does (a float64 reference can land on the
# other side of an integer coordinate, where the offset gradient jumps).
MODES = {
    "float64": (torch.float64, True, torch.float64, 1e-12, 1e-10),
    "float32-exact": (torch.float32, False, torch.float32, 1e-5, 1e-4),
    "float32-tf32": (torch.float32, True, torch.float32, 4e-3, 1e-2),
    "float16": (torch.float16, True, torch.float64, 4e-3, 2e-2),
    "bfloat16": (torch.bfloat16, True, torch.float64, 2e-2, 8e-2),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("mode", list(MODES))
def test_forward_and_gradients_match_torchvision(name, mode):
    dtype, allow, ref_dtype, tol, ertol = MODES[mode]
    case = make_case(sum(map(ord, name)), **CASES[name])
    # float16 / bfloat16: the float64 reference sees the same rounded inputs
    rounded = dtype if dtype in (torch.float16, torch.bfloat16) else ref_dtype
    case = {k: (v.to(rounded).to(ref_dtype) if torch.is_tensor(v) else v) for k, v in case.items()}
    Ho, Wo = case["offset"].shape[2:]
    grad_out = torch.randn(case["input"].shape[0], case["weight"].shape[0], Ho, Wo, device=DEV).to(rounded)
    ref = run(torchvision, case, ref_dtype, grad_out)
    with tf32(allow):
        ours = run(tvn, case, dtype, grad_out)
    assert ours[0].dtype == dtype
    check(ours, ref, tol, ertol, what=f"{mode} vs torchvision {ref_dtype}")


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("mode", ["float32-tf32", "float32-exact", "float16", "bfloat16"])
def test_forward_on_mma_sync_matches_torchvision(name, mode, monkeypatch):
    """On sm90 the forward's wide tiles multiply with wgmma; TVOPS_DCN_WGMMA=0 selects the
    mma.sync kernel the other targets run, which must stay right there too."""
    monkeypatch.setenv("TVOPS_DCN_WGMMA", "0")
    test_forward_and_gradients_match_torchvision(name, mode)


@pytest.mark.parametrize("cout", [64, 256])  # 256: the 64 x 256 forward tile (wgmma on sm90)
def test_exact_float32_keeps_float32_accuracy_at_long_k(cout):
    """allow_tf32=False at dcn-l's reduction length (256 channels x 9 taps = 2304 terms):
    every result as close to float64 as torchvision's float32 FMAs come (the tensor
    cores' own accumulation drifted to 40x their error there)."""
    case = make_case(7, N=1, Cin=256, Cout=cout, H=12, W=12, kh=3, kw=3, stride=(1, 1), pad=(1, 1), dil=(1, 1),
                     groups=1, og=1, spread=1.0)
    grad_out = torch.randn(1, cout, 12, 12, device=DEV)
    exact = run(torchvision, case, torch.float64, grad_out)
    theirs = run(torchvision, case, torch.float32, grad_out)
    with tf32(False):
        ours = run(tvn, case, torch.float32, grad_out)
    for label, o, t, r in zip(("output",) + NAMES, ours, theirs, exact):
        if r is None:
            continue
        assert rel(o, r) <= 4 * rel(t, r) + 1e-7, f"{label}: {rel(o, r):.2e} against torchvision float32 {rel(t, r):.2e}"


@pytest.mark.parametrize("mask", [True, False])
def test_gradcheck_float64(mask):
    assert gradcheck_float64(mask, device=DEV)


def test_nan_offsets_sample_nothing():
    """torchvision casts NaN coordinates to int (undefined behaviour); tvops treats them as
    off the map, exactly like an offset that lands far outside."""
    case = make_case(9, groups=1, og=1, Cin=4, Cout=3)
    nan, far = nan_and_far_offsets(case)
    g = torch.randn(2, 3, *case["offset"].shape[2:], device=DEV, dtype=torch.float64)
    for dtype in (torch.float64, torch.float32):
        with tf32(False):
            check(run(tvn, nan, dtype, g), run(torchvision, far, dtype, g), 1e-5, 1e-4, what=str(dtype))


def test_edge_coordinates():
    """Offsets that land exactly on -1, 0, H - 1 and H: the strict range test of the
    sampler and the coordinate weights without one (y == -1 still moves the offset)."""
    case = make_case(13, N=1, Cin=3, Cout=2, H=5, W=4, kh=1, kw=1, stride=(1, 1), pad=(0, 0), dil=(1, 1), groups=1,
                     og=1)
    Ho, Wo = case["offset"].shape[2:]
    oy = torch.arange(Ho, device=DEV, dtype=torch.float64).view(Ho, 1)
    ox = torch.arange(Wo, device=DEV, dtype=torch.float64).view(1, Wo)
    targets = torch.tensor([-1.0, 0.0, 4.0, 5.0, -0.5, 4.5], device=DEV, dtype=torch.float64)
    ty = targets[torch.arange(Ho * Wo, device=DEV).view(Ho, Wo) % len(targets)]
    tx = targets[(torch.arange(Ho * Wo, device=DEV).view(Ho, Wo) // len(targets)) % len(targets)].clamp(max=4.0)
    case["offset"] = torch.stack([ty - oy, tx - ox]).unsqueeze(0)
    g = torch.randn(1, 2, Ho, Wo, device=DEV, dtype=torch.float64)
    check(run(tvn, case, torch.float64, g), run(torchvision, case, torch.float64, g), 1e-12, 1e-10)


def test_runs_on_the_callers_stream():
    case = make_case(14, **CASES["wide-groups"])
    x = {k: (v.float() if torch.is_tensor(v) else v) for k, v in case.items()}
    expected = tvn.ops.deform_conv2d(**x)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        got = tvn.ops.deform_conv2d(**x)
    torch.cuda.current_stream().wait_stream(s)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_graph_capture_forward_and_backward():
    """Capture fails on any host synchronisation, so this proves there is none."""
    from torchvision_native import _C
    from torchvision_native._convert import from_native, stream_for, to_native

    case = make_case(15, N=2, Cin=16, Cout=8, H=12, W=12, kh=3, kw=3, stride=(1, 1), pad=(1, 1), dil=(1, 1),
                     groups=1, og=2)
    x = {k: (v.float() if torch.is_tensor(v) else v) for k, v in case.items()}
    g = torch.randn(2, 8, 12, 12, device=DEV)
    args = (1, 1, 1, 1, 1, 1, 1, 2, True)

    def step():
        out = _C.deform_conv2d(to_native(x["input"], "i"), to_native(x["weight"], "w"), to_native(x["offset"], "o"),
                               to_native(x["mask"], "m"), to_native(x["bias"], "b"), *args, stream_for(g))
        grads = _C.deform_conv2d_backward(to_native(g, "g"), to_native(x["input"], "i"), to_native(x["weight"], "w"),
                                          to_native(x["offset"], "o"), to_native(x["mask"], "m"),
                                          to_native(x["bias"], "b"), *args, stream_for(g))
        return [from_native(out, g)] + [from_native(t, g) for t in grads]

    assert_graph_replay_matches_eager(step)
