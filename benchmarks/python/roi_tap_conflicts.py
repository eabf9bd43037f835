#!/usr/bin/env python
"""Shared-memory bank conflicts of roi_align's tile forward taps, counted on the CPU for
PERF.md's ra7 RoIs (no GPU needed): how many wavefronts a quarter warp's 16-byte tap loads
take when its lanes read different bins' pixels of one window (1 is the floor: 8 lanes x
16 bytes in 8 different 16-byte bank groups; lanes on the same address share a load).

Layouts counted, for every RoI, bin row and tap (sample and corner):
  row7 <order>  7 lanes = the 7 bins of a bin row, one window row (align_forward_tiles);
                columns in skew8 order (what it stores), plain, or xor-swizzled
  2x4 P<pitch>  8 lanes = 2 bin rows x 4 bins, window rows <pitch> float4s apart
align_forward_lanes reads one pixel of 8 channel planes instead (one wavefront by
construction), which is why it exists; benchmarks/results/cuda-roi-align-h100.md.

    PYTHONPATH=build/dev/python python benchmarks/python/roi_tap_conflicts.py [--rois 2000]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from compare import roi_setup  # noqa: E402

H, W, POOLED, TILE = 200, 304, 7, 32


def axis_taps(start, size_bin, extent):
    """torchvision's float32 sampler for a 2 x 2 grid: (lo, hi) of both samples of each bin; -1 outside."""
    taps = []
    for p in range(POOLED):
        bin_taps = []
        for s in range(2):
            v = np.float32(start + np.float32(p) * size_bin + np.float32(s + .5) * size_bin / np.float32(2))
            if v < -1 or v > extent:
                bin_taps.append((-1, -1))
                continue
            lo = int(max(v, np.float32(0)))
            bin_taps.append((extent - 1, extent - 1) if lo >= extent - 1 else (lo, lo + 1))
        taps.append(bin_taps)
    return taps


def wavefronts(addresses, group):
    """Wavefronts of one quarter warp's 16-byte loads: the most distinct addresses in one bank group."""
    per = {}
    for a in set(x for x in addresses if x is not None):
        per[group(a)] = per.get(group(a), 0) + 1
    return max(per.values(), default=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rois", type=int, default=2000)
    opts = ap.parse_args()
    rois = roi_setup(POOLED)("cpu")["rois"].numpy().astype(np.float32)[: opts.rois]
    orders = {"skew8": lambda c: (c & ~7) | ((c + (c >> 3)) & 7), "plain": lambda c: c,
              "xor8": lambda c: c ^ ((c >> 3) & 7)}
    totals, counts = {}, {}

    def add(key, v):
        totals[key] = totals.get(key, 0) + v
        counts[key] = counts.get(key, 0) + 1

    scale = np.float32(0.25)
    for r in rois:
        x0, y0 = np.float32(r[1] * scale - .5), np.float32(r[2] * scale - .5)
        bw = np.float32((np.float32(r[3] * scale - .5) - x0) / POOLED)
        bh = np.float32((np.float32(r[4] * scale - .5) - y0) / POOLED)
        xs, ys = axis_taps(x0, bw, W), axis_taps(y0, bh, H)
        c0 = min(int(max(x0, 0)), W - 1) // TILE * TILE
        r0 = min(int(max(y0, 0)), H - 1) // TILE * TILE
        for t in range(16):  # sample (y, x) and corner (y, x) of each tap
            sy, yc, sx, xc = t >> 3 & 1, t >> 2 & 1, t >> 1 & 1, t & 1
            for ph in range(POOLED):
                cols = [xs[pw][sx][xc] for pw in range(POOLED)]
                for name, order in orders.items():
                    add(f"row7 {name}", wavefronts([order(c - c0) if c >= 0 else None for c in cols],
                                                   lambda a: a & 7))
            for pitch in (40, 41, 42):
                for ph in range(0, POOLED, 2):
                    for pw in range(0, POOLED, 4):
                        addrs = []
                        for p in (ph, ph + 1):
                            for q in range(pw, min(pw + 4, POOLED)):
                                if p < POOLED:
                                    y, x = ys[p][sy][yc], xs[q][sx][xc]
                                    addrs.append(None if y < 0 or x < 0 else (y - r0) * pitch + (x - c0))
                        add(f"2x4 P{pitch}", wavefronts(addrs, lambda a: a & 7))
    print(f"ra7's first {len(rois)} RoIs: wavefronts a quarter warp's 16-byte tap load (floor 1)")
    for key in totals:
        print(f"  {key:12s} {totals[key] / counts[key]:.3f}")


if __name__ == "__main__":
    main()
