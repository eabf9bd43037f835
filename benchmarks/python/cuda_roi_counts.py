"""roi_align forward by RoI count on FPN-level maps (CUDA): torchvision, tvops by default,
and tvops forced through the tile windows (TVOPS_ROI_FORWARD=tiles) or the per-RoI kernel
(direct). Detection heads call roi_align once a level with tens to hundreds of RoIs, where
fixed costs (plans, launches, host time) decide. Prints a table; --json writes it.

Usage: python benchmarks/python/cuda_roi_counts.py [--json PATH]
"""
import argparse
import json
import os
import statistics
import time

import torch
import torchvision  # noqa: F401 - registers torch.ops.torchvision

import torchvision_native as tvn


def events_us(fn, reps=30):
    """Back-to-back calls: GPU time, or host time where the host is the slower."""
    for _ in range(3):
        fn()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(3):
        s.record()
        for _ in range(reps):
            fn()
        e.record()
        e.synchronize()
        ts.append(s.elapsed_time(e) / reps * 1e3)
    return statistics.median(ts)


def wall_us(fn, reps=30):
    """One waited-for call."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t) * 1e6)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA device")
    g = torch.Generator().manual_seed(1)
    tv = torch.ops.torchvision.roi_align
    rows = []
    print(torch.cuda.get_device_name())
    print("| map (256 ch) | RoIs | torchvision us | tvops default | tiles | direct | (wall us: torchvision / default) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for h, w, stride in ((200, 272, 4), (50, 68, 16), (25, 34, 32)):
        f = torch.randn(1, 256, h, w, generator=g).cuda()
        for k in (8, 16, 32, 64, 128, 256):
            side = torch.exp(torch.rand(k, 2, generator=g) * 1.2) * stride * 7  # bins of 1 to 3.3 pixels
            xy = torch.rand(k, 2, generator=g) * torch.tensor([w * stride * 0.9, h * stride * 0.9])
            r = torch.cat([torch.zeros(k, 1), xy, xy + side], 1).cuda()
            ref = tv(f, r, 1 / stride, 7, 7, 2, False)
            row = {"map": f"{h}x{w}", "rois": k, "torchvision": events_us(lambda: tv(f, r, 1 / stride, 7, 7, 2, False)),
                   "torchvision_wall": wall_us(lambda: tv(f, r, 1 / stride, 7, 7, 2, False))}
            for mode in ("", "tiles", "direct"):
                os.environ["TVOPS_ROI_FORWARD"] = mode
                fn = lambda: tvn.ops.roi_align(f, r, (7, 7), 1 / stride, 2, False)  # noqa: E731
                torch.testing.assert_close(fn(), ref, rtol=1e-5, atol=1e-5)
                row[mode or "default"] = events_us(fn)
                if not mode:
                    row["default_wall"] = wall_us(fn)
            os.environ.pop("TVOPS_ROI_FORWARD")
            rows.append(row)
            print(f"| {row['map']} | {k} | {row['torchvision']:.1f} | {row['default']:.1f} | {row['tiles']:.1f} | "
                  f"{row['direct']:.1f} | {row['torchvision_wall']:.1f} / {row['default_wall']:.1f} |", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
