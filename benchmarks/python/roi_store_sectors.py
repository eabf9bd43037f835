#!/usr/bin/env python
"""32-byte sectors that roi_align's lane tile forward (align_forward_lanes) writes for
PERF.md's ra7, counted on the CPU (no GPU needed), against the 3.14 M sectors of a dense
write of the same 100 MB output.

The tile forward splits each RoI into records: the rectangles of its bins whose samples
start in one map tile. A tile's records follow one another as items (bins, ph-major within a
record); a warp takes 32 consecutive items and stores one channel of them per instruction,
so an instruction writes a few runs of neighbouring bins, and each run's partial sectors
are written again by the instruction or block that writes their other floats.

Counted for each tile shape (columns x rows of the plan's cells):
  as stored  sectors of each store instruction (32 items, one channel), summed: what ncu
             reports as global store sectors (6.39 M for 32 x 16 on an H100)
  per record the sectors of each record's bins in a channel, counted once: what a block
             that gathered a record's stores would write for that split
  records    records per RoI; column splits cut bin rows (runs shorter than 7 bins)

    PYTHONPATH=build/dev/python python benchmarks/python/roi_store_sectors.py [--rois 2000]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from compare import roi_setup  # noqa: E402

H, W, C, POOLED, SCALE = 200, 304, 256, 7, 0.25
BINS = POOLED * POOLED
SECTOR_FLOATS = 8


def anchors(start, size_bin, extent, cell):
    """The tile (along one axis) where each bin's samples start, as the plan computes it."""
    out = []
    for p in range(POOLED):
        a = np.float32(start + np.float32(p) * size_bin + np.float32(0.5) * size_bin / np.float32(2))
        b = np.float32(start + np.float32(p) * size_bin + np.float32(1.5) * size_bin / np.float32(2))
        out.append(int(min(max(min(a, b), 0.0), extent - 1)) // cell)
    return out


def records_of(roi, cols, rows):
    """(tile, ph0, ph1, pw0, pw1) of one aligned RoI, bins grouped by the tile they start in."""
    b, x1, y1, x2, y2 = roi
    sw, sh = np.float32(x1 * SCALE - 0.5), np.float32(y1 * SCALE - 0.5)
    bw, bh = np.float32((x2 - x1) * SCALE / POOLED), np.float32((y2 - y1) * SCALE / POOLED)
    ty, tx = anchors(sh, bh, H, rows), anchors(sw, bw, W, cols)
    recs = {}
    for ph in range(POOLED):
        for pw in range(POOLED):
            key = (int(b), ty[ph], tx[pw])
            r = recs.setdefault(key, [ph, ph + 1, pw, pw + 1])
            r[0], r[1] = min(r[0], ph), max(r[1], ph + 1)
            r[2], r[3] = min(r[2], pw), max(r[3], pw + 1)
    return [(key, *r) for key, r in recs.items()]


def sectors(floats):
    """Distinct sectors of each row of float offsets (rows: channels)."""
    s = np.sort(floats // SECTOR_FLOATS, axis=1)
    return int((np.diff(s, axis=1) != 0).sum() + s.shape[0])


def count(rois, cols, rows):
    tiles = {}
    for k, roi in enumerate(rois):
        for key, ph0, ph1, pw0, pw1 in records_of(roi, cols, rows):
            tiles.setdefault(key, []).append((k, ph0, ph1, pw0, pw1))
    channel = np.arange(C, dtype=np.int64)[:, None] * BINS
    stored = per_record = nrec = col_split = 0
    for recs in tiles.values():
        items = []
        for k, ph0, ph1, pw0, pw1 in recs:
            nrec += 1
            col_split += pw1 - pw0 < POOLED
            rec_items = [k * C * BINS + ph * POOLED + pw for ph in range(ph0, ph1) for pw in range(pw0, pw1)]
            items += rec_items
            per_record += sectors(channel + np.array(rec_items, dtype=np.int64)[None, :])
        items = np.array(items, dtype=np.int64)
        for g in range(0, len(items), 32):
            stored += sectors(channel + items[None, g:g + 32])
    return stored, per_record, nrec / len(rois), col_split / max(nrec, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rois", type=int, default=2000)
    opts = ap.parse_args()
    rois = roi_setup(POOLED)("cpu")["rois"].numpy().astype(np.float64)[: opts.rois]
    dense = len(rois) * C * BINS / SECTOR_FLOATS
    print(f"ra7, {len(rois)} RoIs: a dense write is {dense / 1e6:.2f} M sectors")
    print("| tile (cols x rows) | window px (32 + 6 halo) | as stored, M | x dense | per record, M | x dense | records a RoI | records cut across columns |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for cols, rows in ((32, 16), (16, 32), (24, 20), (32, 32), (64, 8), (64, 16)):
        stored, per_record, per_roi, cut = count(rois, cols, rows)
        print(f"| {cols} x {rows} | {(cols + 6) * (rows + 6)} | {stored / 1e6:.2f} | {stored / dense:.2f} | "
              f"{per_record / 1e6:.2f} | {per_record / dense:.2f} | {per_roi:.2f} | {cut:.0%} |", flush=True)


if __name__ == "__main__":
    main()
