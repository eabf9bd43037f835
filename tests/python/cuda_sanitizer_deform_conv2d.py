"""A few small CUDA deform_conv2d calls (every product mode, both tile widths, offset
groups that split a run of channels, no mask, NaN and far offsets) for
    compute-sanitizer --tool memcheck python tests/python/cuda_sanitizer_deform_conv2d.py
    compute-sanitizer --tool racecheck python tests/python/cuda_sanitizer_deform_conv2d.py"""
import torch

import torchvision_native as tvn

torch.manual_seed(0)
dev = "cuda"
shapes = [  # N, Cin, Cout, H, W, kh, kw, stride, pad, dil, groups, offset groups, mask
    (2, 6, 4, 9, 11, 3, 2, (1, 2), (1, 0), (2, 1), 2, 3, True),
    (1, 136, 130, 5, 6, 3, 3, (1, 1), (1, 1), (1, 1), 1, 1, False),
    (3, 80, 72, 4, 5, 3, 3, (2, 1), (1, 1), (1, 1), 1, 2, True),
    (1, 40, 136, 33, 34, 3, 3, (1, 1), (1, 1), (1, 1), 1, 2, True),  # 8 x 8 pixel patches, partial at the edges
]
for N, Cin, Cout, H, W, kh, kw, stride, pad, dil, groups, og, use_mask in shapes:
    Ho = (H + 2 * pad[0] - (dil[0] * (kh - 1) + 1)) // stride[0] + 1
    Wo = (W + 2 * pad[1] - (dil[1] * (kw - 1) + 1)) // stride[1] + 1
    x = torch.randn(N, Cin, H, W, device=dev)
    off = torch.randn(N, 2 * og * kh * kw, Ho, Wo, device=dev) * 3
    off[:, 0, 0, 0] = float("nan")
    off[:, 1, -1, -1] = 1e9
    w = torch.randn(Cout, Cin // groups, kh, kw, device=dev)
    b = torch.randn(Cout, device=dev)
    m = torch.rand(N, og * kh * kw, Ho, Wo, device=dev) if use_mask else None
    for dtype, tf32 in ((torch.float32, True), (torch.float32, False), (torch.float64, True), (torch.float16, True),
                        (torch.bfloat16, True)):
        torch.backends.cudnn.allow_tf32 = tf32
        ts = [t.to(dtype).requires_grad_() if t is not None else None for t in (x, off, w, b, m)]
        out = tvn.ops.deform_conv2d(ts[0], ts[1], ts[2], ts[3], stride=stride, padding=pad, dilation=dil, mask=ts[4])
        out.float().sum().backward()
torch.backends.cudnn.allow_tf32 = True
torch.cuda.synchronize()
print("sanitizer deform_conv2d: done")
