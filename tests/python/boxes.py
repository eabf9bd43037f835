"""Box and score generators shared by the tests and benchmarks.

All generators return float64 torch tensors on the CPU (cast them as needed) and are
deterministic for a given seed.
"""
import torch


def random_boxes(n, seed=0, dtype=torch.float32, origin=1000.0, min_size=4.0, max_size=204.0):
    """PERF.md's random boxes: top-left uniform in [0, origin)^2, width and height
    uniform in [min_size, max_size). Returns (boxes [n, 4], scores [n]) of `dtype`."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * origin
    wh = min_size + torch.rand(n, 2, generator=g, dtype=torch.float64) * (max_size - min_size)
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    return boxes.to(dtype), scores.to(dtype)


def tied_scores(n, levels, seed=0, dtype=torch.float32):
    """Scores drawn from only `levels` distinct values: many exact ties."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, levels, (n,), generator=g).to(torch.float64) / max(levels, 1)).to(dtype)


def clustered_boxes(n, seed=0, dtype=torch.float32, centre=500.0, spread=2.0, size=20.0):
    """Boxes whose corners all lie within `spread` of one point: heavy overlap, many
    near-identical boxes."""
    g = torch.Generator().manual_seed(seed)
    c = centre + (torch.rand(n, 2, generator=g, dtype=torch.float64) - 0.5) * spread
    half = size / 2 + torch.rand(n, 2, generator=g, dtype=torch.float64) * spread
    boxes = torch.cat([c - half, c + half], dim=1)
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    return boxes.to(dtype), scores.to(dtype)


def with_duplicates(boxes, scores, copies=3):
    """Each box repeated `copies` times (interleaved), scores repeated too."""
    return boxes.repeat_interleave(copies, dim=0), scores.repeat_interleave(copies)


def feature_map(n=2, c=13, h=23, w=31, seed=0, dtype=torch.float32):
    """A random [n, c, h, w] feature map."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=g, dtype=torch.float64).to(dtype)


def random_rois(k, n_images=2, extent=120.0, seed=1, dtype=torch.float32):
    """[k, 5] RoIs in image coordinates (the map is the image at scale 1/4), some reaching
    past the border, some smaller than a feature pixel."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(k, 2, generator=g, dtype=torch.float64) * extent - 8
    wh = torch.rand(k, 2, generator=g, dtype=torch.float64) ** 2 * extent * 0.6
    idx = torch.randint(0, n_images, (k, 1), generator=g).to(torch.float64)
    return torch.cat([idx, xy, xy + wh], dim=1).to(dtype)
