#!/usr/bin/env python
"""Atomic adds of roi_align's backward on PERF.md's ra7, counted on the CPU (no GPU needed):
the taps of each bin as sampled (16: 2 x 2 samples, 4 corners), after folding a bin's
coinciding corner rows and columns (what align_backward_cl adds, one 16-byte atomic per
4 channels), and the pixels a RoI touches at all (the union of its bins' tap rows times
the union of their tap columns: what a kernel summing a RoI's bins first would add).

    PYTHONPATH=build/dev/python python benchmarks/python/roi_backward_taps.py
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from compare import roi_setup  # noqa: E402

H, W, POOLED, GRID, SCALE = 200, 304, 7, 2, 0.25


def axis_taps(start, size, limit):
    """Per bin: the set of pixel rows (columns) its samples' corners use (torchvision's
    bilinear_interpolate, samples outside [-1, limit] dropped)."""
    bins = []
    for p in range(POOLED):
        taps = set()
        for i in range(GRID):
            v = start + p * size / POOLED + (i + 0.5) * size / POOLED / GRID
            if v < -1 or v > limit:
                continue
            v = max(v, 0.0)
            lo = int(v)
            hi = lo if lo >= limit - 1 else lo + 1
            taps |= {min(lo, limit - 1), hi}
        bins.append(taps)
    return bins


def main():
    rois = roi_setup(POOLED)("cpu")["rois"].double().tolist()
    sampled = folded = footprint = 0
    for _, x0, y0, x1, y1 in rois:
        x0, y0, x1, y1 = (v * SCALE - 0.5 for v in (x0, y0, x1, y1))  # aligned=True
        ys, xs = axis_taps(y0, y1 - y0, H), axis_taps(x0, x1 - x0, W)
        sampled += 16 * POOLED * POOLED
        folded += sum(len(r) for r in ys) * sum(len(c) for c in xs)
        footprint += len(set().union(*ys)) * len(set().union(*xs))
    n = len(rois)
    print(f"{n} RoIs: taps {sampled / n:.0f} a RoI, folded per bin {folded / n:.0f}, "
          f"distinct pixels {footprint / n:.0f} ({folded / footprint:.2f}x fewer than folded)")


if __name__ == "__main__":
    main()
