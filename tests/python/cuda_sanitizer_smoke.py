"""A few small CUDA RoI calls (every kernel, both backward modes, odd inputs) for
    compute-sanitizer --tool memcheck python tests/python/cuda_sanitizer_smoke.py
pytest under the sanitizer is too slow; this exercises the same kernels in seconds."""
import torch

import torchvision_native as tvn

torch.manual_seed(0)
dev = "cuda"
x = torch.randn(2, 24, 9, 11, device=dev)
rois = torch.tensor([[0, 1.0, 1.5, 20.0, 30.0], [1, -9.0, -9.0, 60.0, 50.0], [5, 1.0, 1.0, 2.0, 2.0],
                     [float("nan"), 0.0, 0.0, 4.0, 4.0], [1, 30.0, 30.0, 30.0, 30.0]], device=dev)
for det in (False, True):
    torch.use_deterministic_algorithms(det)
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        xs = x.to(dtype).requires_grad_()
        r = rois.to(dtype)
        outs = [tvn.ops.roi_align(xs, r, (3, 4), 0.5, -1, True), tvn.ops.roi_align(xs, r, (20, 20), 0.5, 2, False),
                tvn.ops.roi_pool(xs, r, (3, 4), 0.5), tvn.ops.roi_pool(xs, r, (30, 30), 0.5),
                tvn.ops.ps_roi_align(xs, r, (3, 4), 0.5, 2), tvn.ops.ps_roi_pool(xs, r, (2, 3), 0.5)]
        sum(o.float().nan_to_num().sum() for o in outs).backward()
        xcl = x.to(dtype).to(memory_format=torch.channels_last)
        tvn.ops.roi_align(xcl, r, 2, 0.5, 2, True)
torch.use_deterministic_algorithms(False)
torch.cuda.synchronize()
print("sanitizer smoke: done")
