#!/usr/bin/env python
"""GPU time of the CUDA RoI kernels alone (CUDA events around back-to-back calls, no
host sync per call), tvops against torchvision's ops, on the PERF.md ra7 inputs.
compare.py times whole Python calls with a sync each; this separates the kernels
from the call overhead. The "back to back" row runs whole forward + autograd backward
calls back to back (a training loop's view); the "one call" rows time a whole Python
call (ra7 forward, and forward + autograd backward) waited for each time, median of
--reps calls. --json writes the rows.

    PYTHONPATH=build/dev/python python benchmarks/python/cuda_roi_timing.py [--reps 50] [--json PATH]
"""
import argparse
import json
import os
import statistics
import sys

import torch
import torchvision  # also registers torch.ops.torchvision

sys.path.insert(0, os.path.dirname(__file__))
from compare import psroi_setup, roi_setup  # noqa: E402
from cuda_events import median_ms  # noqa: E402

import torchvision_native as tvn  # noqa: E402
from torchvision_native import _C  # noqa: E402
from torchvision_native._convert import stream_for, to_native  # noqa: E402


def gpu_ms(fn, reps):
    for _ in range(3):
        fn()
    times = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / reps)
    return statistics.median(times)


def fwd_bwd(module, x, rois, grad):
    def run():
        xr = x.detach().requires_grad_()
        module.ops.roi_align(xr, rois, (7, 7), 0.25, 2, True).backward(grad)
    return run


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--json", help="write the rows here")
    opts = p.parse_args()
    tv = torch.ops.torchvision
    a7, a14 = roi_setup(7, backward=True)("cuda"), roi_setup(14)("cuda")
    ps = psroi_setup()("cuda")
    x, rois, grad = a7["x"], a7["rois"], a7["grad"]
    s = stream_for(x)
    nx, nr, ng = to_native(x, "x"), to_native(rois, "rois"), to_native(grad, "grad")
    nps = to_native(ps["x"], "x")
    argmax = tv.roi_pool(x, rois, 0.25, 7, 7)[1]
    cases = [
        ("ra7 fwd", lambda: tv.roi_align(x, rois, 0.25, 7, 7, 2, True),
         lambda: _C.roi_align(nx, nr, 0.25, 7, 7, 2, True, s)),
        ("ra14 fwd", lambda: tv.roi_align(x, rois, 0.25, 14, 14, 2, True),
         lambda: _C.roi_align(nx, nr, 0.25, 14, 14, 2, True, s)),
        ("ra7 bwd", lambda: tv._roi_align_backward(grad, rois, 0.25, 7, 7, 2, 256, 200, 304, 2, True),
         lambda: _C.roi_align_backward(ng, nr, 0.25, 7, 7, 2, 256, 200, 304, 2, True, s, False)),
        ("ra7 bwd deterministic", None,
         lambda: _C.roi_align_backward(ng, nr, 0.25, 7, 7, 2, 256, 200, 304, 2, True, s, True)),
        ("rp7 fwd", lambda: tv.roi_pool(x, rois, 0.25, 7, 7),
         lambda: _C.roi_pool(nx, nr, 0.25, 7, 7, s)),
        ("rp7 bwd", lambda: tv._roi_pool_backward(grad, rois, argmax, 0.25, 7, 7, 2, 256, 200, 304),
         lambda: _C.roi_pool_backward(ng, nr, to_native(argmax, "argmax"), 0.25, 7, 7, 2, 256, 200, 304, s, False)),
        ("psra7 fwd", lambda: tv.ps_roi_align(ps["x"], rois, 0.25, 7, 7, 2),
         lambda: _C.ps_roi_align(nps, nr, 0.25, 7, 7, 2, s)),
    ]
    rows = []

    def row(name, t, o):
        rows.append({"case": name, "torchvision_ms": None if t != t else round(t, 4), "tvops_ms": round(o, 4)})
        print(f"| {name} | {t:.3f} | {o:.3f} | {'-' if t != t else f'{t / o:.1f}x'} |", flush=True)

    print(f"# {torch.cuda.get_device_name()}, GPU ms per call (CUDA events, {opts.reps} back-to-back calls)")
    print("| kernel | torchvision ms | tvops ms | speedup |\n|---|---:|---:|---:|")
    for name, theirs, ours in cases:
        row(name, gpu_ms(theirs, opts.reps) if theirs else float("nan"), gpu_ms(ours, opts.reps))
    row("ra7 fwd+bwd, back to back", gpu_ms(fwd_bwd(torchvision, x, rois, grad), opts.reps),
        gpu_ms(fwd_bwd(tvn, x, rois, grad), opts.reps))
    calls = [
        ("ra7 fwd, one call", lambda: torchvision.ops.roi_align(x, rois, (7, 7), 0.25, 2, True),
         lambda: tvn.ops.roi_align(x, rois, (7, 7), 0.25, 2, True)),
        ("ra7 fwd+bwd, one call", fwd_bwd(torchvision, x, rois, grad), fwd_bwd(tvn, x, rois, grad)),
    ]
    for name, theirs, ours in calls:
        row(name, median_ms(theirs, opts.reps, warmup=3), median_ms(ours, opts.reps, warmup=3))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                       "torchvision": torchvision.__version__, "reps": opts.reps, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
