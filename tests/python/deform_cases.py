"""deform_conv2d test inputs shared by the CPU and CUDA tests: random cases in
torchvision.ops.deform_conv2d's keyword arguments, and the float64 gradcheck."""
import torch

import torchvision_native as tvn


def out_size(n, k, stride, pad, dil):
    return (n + 2 * pad - (dil * (k - 1) + 1)) // stride + 1


def make_case(seed, N=2, Cin=6, H=9, W=11, Cout=4, kh=3, kw=2, stride=(1, 2), pad=(1, 0), dil=(2, 1), groups=2,
              og=3, mask=True, bias=True, dtype=torch.float64, spread=2.0, device="cpu"):
    """Random input, offsets (`spread` pixels), weight, bias and mask (or None)."""
    g = torch.Generator().manual_seed(seed)
    Ho, Wo = out_size(H, kh, stride[0], pad[0], dil[0]), out_size(W, kw, stride[1], pad[1], dil[1])
    t = dict(input=torch.randn(N, Cin, H, W, generator=g, dtype=dtype),
             offset=torch.randn(N, 2 * og * kh * kw, Ho, Wo, generator=g, dtype=dtype) * spread,
             weight=torch.randn(Cout, Cin // groups, kh, kw, generator=g, dtype=dtype),
             bias=torch.randn(Cout, generator=g, dtype=dtype) if bias else None,
             mask=torch.rand(N, og * kh * kw, Ho, Wo, generator=g, dtype=dtype) if mask else None)
    case = {k: (v.to(device) if v is not None else None) for k, v in t.items()}
    case.update(stride=stride, padding=pad, dilation=dil)
    return case


def gradcheck_float64(mask, device="cpu"):
    """torch.autograd.gradcheck of tvops' deform_conv2d in every input (offsets within a
    pixel or so, groups and offset groups of 2)."""
    case = make_case(3, N=2, Cin=4, Cout=2, H=5, W=6, kh=2, kw=2, stride=(1, 1), pad=(1, 0), dil=(1, 1), groups=2,
                     og=2, mask=mask, spread=1.0, device=device)
    names = ["input", "offset", "weight", "bias"] + (["mask"] if mask else [])
    tensors = [case[n].clone().requires_grad_() for n in names]

    def fn(*ts):
        kw = dict(case)
        kw.update(zip(names, ts))
        return tvn.ops.deform_conv2d(**kw)

    return torch.autograd.gradcheck(fn, tensors, nondet_tol=1e-5)


def nan_and_far_offsets(case):
    """The case with some offsets NaN, and with the same offsets 1e6 pixels away: tvops
    treats NaN coordinates as off the map (torchvision casts them to int: undefined)."""
    nan, far = dict(case), dict(case)
    nan["offset"] = case["offset"].clone()
    nan["offset"][:, 0::2, 1, :] = float("nan")
    far["offset"] = case["offset"].clone()
    far["offset"][:, 0::2, 1, :] = 1e6
    return nan, far
