"""A few small CUDA RoI calls (every kernel, both backward modes, odd inputs) for
    compute-sanitizer --tool memcheck python tests/python/cuda_sanitizer_smoke.py
pytest under the sanitizer is too slow; this exercises the same kernels in seconds."""
import os
import sys

import torch

import torchvision_native as tvn

sys.path.insert(0, os.path.dirname(__file__))
from test_roi_cuda import _tile_case  # noqa: E402

torch.manual_seed(0)
dev = "cuda"
x = torch.randn(2, 24, 9, 11, device=dev)
rois = torch.tensor([[0, 1.0, 1.5, 20.0, 30.0], [1, -9.0, -9.0, 60.0, 50.0], [5, 1.0, 1.0, 2.0, 2.0],
                     [float("nan"), 0.0, 0.0, 4.0, 4.0], [1, 30.0, 30.0, 30.0, 30.0]], device=dev)
xw32 = torch.randn(2, 8, 200, 200, device=dev)
crowd = torch.rand(40, 2, device=dev) * 30
rw = torch.cat([torch.cat([torch.zeros(40, 1, device=dev), crowd, crowd + 90], 1),
                torch.cat([torch.zeros(40, 1, device=dev), crowd + 100, crowd + 150], 1),
                torch.tensor([[1, 0.0, 0.0, 199.0, 199.0], [1, 150.0, 160.0, 210.0, 230.0],
                              [0, -20.0, -5.0, 3.0, 4.0], [3, 1.0, 1.0, 5.0, 5.0]], device=dev)])
for det in (False, True):
    torch.use_deterministic_algorithms(det)
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        xs = x.to(dtype).requires_grad_()
        r = rois.to(dtype)
        outs = [tvn.ops.roi_align(xs, r, (3, 4), 0.5, -1, True), tvn.ops.roi_align(xs, r, (20, 20), 0.5, 2, False),
                tvn.ops.roi_pool(xs, r, (3, 4), 0.5), tvn.ops.roi_pool(xs, r, (30, 30), 0.5),
                tvn.ops.ps_roi_align(xs, r, (3, 4), 0.5, 2), tvn.ops.ps_roi_pool(xs, r, (2, 3), 0.5),
                tvn.ops.roi_align(xs, r, (5, 6), 0.5, 2, True)]
        sum(o.float().nan_to_num().sum() for o in outs).backward()
        xcl = x.to(dtype).to(memory_format=torch.channels_last)
        tvn.ops.roi_align(xcl, r, 2, 0.5, 2, True)
        # roi_align's shared-memory windows: 16-byte rows, a RoI too big for a window,
        # crowded RoIs whose union does not fit (big ones: global memory for float32's float4
        # windows; mid-sized ones: one RoI a window), adaptive grids
        xw = xw32.to(dtype)
        xwg = xw[:1, :5].clone().requires_grad_()  # the deterministic tile backward: 7 x 7 tiles
        tvn.ops.roi_align(xwg, rw.to(dtype), (7, 7), 1.0, 2, True).float().nan_to_num().sum().backward()
        for sr in (2, -1):
            tvn.ops.roi_align(xw, rw.to(dtype), (7, 7), 1.0, sr, True)
            tvn.ops.roi_align(xw[:, :, :, 1:], rw.to(dtype), (7, 7), 1.0, sr, False)  # unaligned rows
torch.use_deterministic_algorithms(False)
# roi_align's tile forwards (both block sizes, the lane kernel) and the per-RoI kernel on the tile test's
# inputs: tile edges, the map's border, RoIs left to the group kernels, 16-byte and scalar
# rows, a map narrower than a tile
for forward in ("tiles", "tiles4", "lanes", "direct"):
    os.environ["TVOPS_ROI_FORWARD"] = forward
    for width, aligned in ((168, True), (170, False), (40, True)):
        xt, rt, (size, scale, sr, al) = _tile_case(width, aligned)
        for dtype in (torch.float32, torch.float16):
            tvn.ops.roi_align(xt.to(dtype).to(dev), rt.to(dtype).to(dev), size, scale, sr, al)
os.environ.pop("TVOPS_ROI_FORWARD")
torch.cuda.synchronize()
print("sanitizer smoke: done")
