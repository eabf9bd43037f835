#!/usr/bin/env python
"""Per-call overhead of the torch-facing API on tiny inputs, against torchvision's own
op, in one process (CPU, one thread):

    PYTHONPATH=build/dev/python python benchmarks/python/torch_overhead.py [--out benchmarks/results]

Calls timed (median per-call microseconds; the variants interleave in rounds so drift on
a noisy machine hits them alike):
  torchvision        torchvision.ops.<op>
  tvn (custom op)    torchvision_native.ops.<op>: the Python wrapper, then torch.ops.tvops.<op>
  torch.ops.tvops    the custom op called directly
  tvn (plain call)   the native function through DLPack, no torch.library (what
                     torchvision_native did before the custom ops; still the path without them)
  patched torchvision  torchvision.ops.<op> after patch_torchvision()
Writes <out>/torch-overhead-cpu.{json,md}.
"""
import argparse
import json
import os
import statistics
import sys
import timeit

import torch
import torchvision

import torchvision_native as tvn
from torchvision_native import _C
from torchvision_native._convert import from_native, to_native

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import machine_info  # noqa: E402


def inputs():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(10, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(10, 2, generator=g) * 30], 1)
    scores = torch.rand(10, generator=g)
    x = torch.randn(1, 16, 32, 32, generator=g)
    rois = torch.tensor([[0.0, 3.0, 4.0, 60.0, 50.0]])
    return boxes, scores, x, rois


def variants():
    boxes, scores, x, rois = inputs()
    nms = {
        "torchvision": lambda: torchvision.ops.nms(boxes, scores, 0.5),
        "tvn (custom op)": lambda: tvn.ops.nms(boxes, scores, 0.5),
        "torch.ops.tvops": lambda: torch.ops.tvops.nms(boxes, scores, 0.5),
        "tvn (plain call)": lambda: from_native(_C.nms(to_native(boxes, "b"), to_native(scores, "s"), 0.5), boxes),
        "patched torchvision": lambda: torchvision.ops.nms(boxes, scores, 0.5),
    }
    roi_align = {
        "torchvision": lambda: torchvision.ops.roi_align(x, rois, 7, 0.25, 2, True),
        "tvn (custom op)": lambda: tvn.ops.roi_align(x, rois, 7, 0.25, 2, True),
        "torch.ops.tvops": lambda: torch.ops.tvops.roi_align(x, rois, 0.25, 7, 7, 2, True),
        "tvn (plain call)": lambda: from_native(_C.roi_align(to_native(x, "x"), to_native(rois, "r"), 0.25, 7, 7, 2,
                                                             True), x),
        "patched torchvision": lambda: torchvision.ops.roi_align(x, rois, 7, 0.25, 2, True),
    }
    return {"nms, 10 boxes": nms, "roi_align, 1 RoI (16 x 32 x 32 map, 7 x 7)": roi_align}


def per_call_us(fn, number):
    return timeit.timeit(fn, number=number) / number * 1e6


def measure(ops, rounds, number):
    """{op: {variant: median us}}: every round times each variant once, in turn."""
    samples = {op: {v: [] for v in calls} for op, calls in ops.items()}
    for _ in range(rounds):
        for op, calls in ops.items():
            for name, fn in calls.items():
                patched = name == "patched torchvision"
                if patched:
                    tvn.patch_torchvision()
                try:
                    for _ in range(50):
                        fn()  # warm-up
                    samples[op][name].append(per_call_us(fn, number))
                finally:
                    if patched:
                        tvn.unpatch_torchvision()
    return {op: {v: statistics.median(t) for v, t in vs.items()} for op, vs in samples.items()}


def check_results(ops):
    for op, calls in ops.items():
        ref = calls["torchvision"]()
        for name, fn in calls.items():
            if name == "patched torchvision":
                with tvn.patched_torchvision():
                    out = fn()
            else:
                out = fn()
            assert torch.equal(out, ref), (op, name)


def markdown(results, info):
    lines = [
        "# Per-call overhead of the torch-facing API (CPU, one thread)",
        "",
        f"{info['cpu_model']}; torch {info['torch']}, torchvision {info['torchvision']}; "
        f"`benchmarks/python/torch_overhead.py`, median microseconds per call, all variants in one process "
        "(interleaved rounds). Identical results in every row.",
        "",
        "| op | torchvision | tvn (custom op) | over torchvision | torch.ops.tvops | tvn (plain call) | "
        "patched torchvision |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for op, r in results.items():
        lines.append(f"| {op} | {r['torchvision']:.1f} | {r['tvn (custom op)']:.1f} | "
                     f"{r['tvn (custom op)'] - r['torchvision']:+.1f} | {r['torch.ops.tvops']:.1f} | "
                     f"{r['tvn (plain call)']:.1f} | {r['patched torchvision']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=2000, help="calls per timing")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tvn.set_num_threads(1)
    ops = variants()
    check_results(ops)
    results = measure(ops, args.rounds, args.number)
    info = machine_info("cpu")
    report = markdown(results, info)
    print(report)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "torch-overhead-cpu.json"), "w") as f:
        json.dump({"machine": info, "threads": 1, "rounds": args.rounds, "calls_per_timing": args.number,
                   "median_us": results}, f, indent=1)
    with open(os.path.join(args.out, "torch-overhead-cpu.md"), "w") as f:
        f.write(report)


if __name__ == "__main__":
    main()
