#!/usr/bin/env python
"""tvops against torchvision, in one run on this machine (PERF.md, "How to measure").

    PYTHONPATH=build/dev/python python benchmarks/python/compare.py [--threads 1,2] [--quick]
        [--device cpu|cuda] [--workloads nms-1k,nms-20k] [--out benchmarks/results]

For every workload, every CPU ISA tier this build and CPU have (tvn.set_cpu_isa) and every
thread count, it times torchvision and tvops (median of >= 10 repetitions after warm-up),
checks that both give the same result, prints a markdown table and writes
<out>/compare-<device>.{json,md,png}. torchvision has no ISA choice, so it is timed once
per thread count and its time is shared by the rows of each ISA.

Add an op by appending a Workload to WORKLOADS: a name, a setup function that builds the
inputs on a device, the torchvision call and the tvops call (both take the setup's result).
A workload may time other libraries too (`extras`, e.g. simplejpeg for the JPEG rows:
their times land in the row's `extras_ms` and the table's last column), and codecs,
whose speed doesn't depend on tvops' ISA tiers, run once per thread count (`per_isa`).
"""
import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Optional

import torch
import torchvision

import torchvision_native as tvn

try:  # the JPEG decoder CPU users pick for speed (same libjpeg-turbo family)
    import simplejpeg
except ImportError:  # pragma: no cover
    simplejpeg = None

SEED = 0


# ---------------------------------------------------------------------------------------
# Inputs (PERF.md "Standard workloads").

def random_boxes(n, device, seed=SEED, dtype=torch.float32):
    """Top-left uniform in [0,1000)^2, width and height uniform in [4,204); random scores."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 1000
    wh = 4 + torch.rand(n, 2, generator=g) * 200
    boxes = torch.cat([xy, xy + wh], dim=1).to(dtype)
    scores = torch.rand(n, generator=g).to(dtype)
    return boxes.to(device), scores.to(device)


def nms_setup(n):
    def setup(device):
        boxes, scores = random_boxes(n, device)
        return {"boxes": boxes, "scores": scores, "iou_threshold": 0.5}
    return setup


def batched_nms_setup(n, classes):
    def setup(device):
        boxes, scores = random_boxes(n, device)
        g = torch.Generator().manual_seed(SEED + 1)
        idxs = torch.randint(0, classes, (n,), generator=g).to(device)
        return {"boxes": boxes, "scores": scores, "idxs": idxs, "iou_threshold": 0.5}
    return setup


# ---------------------------------------------------------------------------------------
# The workload table.

@dataclasses.dataclass
class Workload:
    name: str
    setup: Callable[[str], Any]             # device -> inputs (passed to both calls)
    torchvision: Callable[[Any], Any]       # inputs -> result
    tvops: Callable[[Any], Any]             # inputs -> result
    available: Callable[[], bool] = lambda: True  # False: tvops lacks the op, skip
    same: Optional[Callable[[Any, Any], bool]] = None  # result check; default torch.equal on CPU copies
    # What tvops' result is checked against, when not the timed torchvision call's result.
    reference: Optional[Callable[[Any], Any]] = None
    # Other implementations timed beside them (name -> inputs -> result); not checked.
    extras: dict = dataclasses.field(default_factory=dict)
    per_isa: bool = True  # False: tvops' ISA tier doesn't matter (codecs): once per thread count
    # Repetitions of torchvision's call when fewer than the policy's would take minutes
    # (its deform_conv2d: up to 8 s a call); None: the policy's.
    torchvision_reps: Optional[int] = None


def _nms_tv(a):
    return torchvision.ops.nms(a["boxes"], a["scores"], a["iou_threshold"])


def _nms_tvn(a):
    return tvn.ops.nms(a["boxes"], a["scores"], a["iou_threshold"])


def _same_kept_set(ours, theirs):
    return torch.equal(ours.cpu().sort()[0], theirs.cpu().sort()[0])


def _bnms_tv(a):
    return torchvision.ops.batched_nms(a["boxes"], a["scores"], a["idxs"], a["iou_threshold"])


def _bnms_tvn(a):
    return tvn.ops.batched_nms(a["boxes"], a["scores"], a["idxs"], a["iou_threshold"])


def pairwise_setup(n, m):
    def setup(device):
        a, _ = random_boxes(n, device)
        b, _ = random_boxes(m, device, seed=SEED + 2)
        return {"a": a, "b": b}
    return setup


def roi_setup(pooled, backward=False):
    """PERF.md ra7 / ra14: x (2,256,200,304), 2000 RoIs (the random boxes / 4 on an
    800-pixel image: scale 0.25), sampling 2, aligned."""
    def setup(device):
        g = torch.Generator().manual_seed(SEED)
        x = torch.randn(2, 256, 200, 304, generator=g).to(device)
        boxes, _ = random_boxes(2000, device)
        idx = torch.randint(0, 2, (2000, 1), generator=g).to(device=device, dtype=boxes.dtype)
        args = {"x": x, "rois": torch.cat([idx, boxes * 0.8], 1), "pooled": pooled}
        if backward:
            args["grad"] = torch.randn(2000, 256, pooled, pooled, generator=g).to(device)
        return args
    return setup


def psroi_setup(on_map=False):
    """PERF.md psra7: x (2, 490, 64, 64) = 10 output channels x 7 x 7, 2000 RoIs, with
    ps_roi_align's defaults (spatial_scale 1, adaptive sampling): the random boxes as
    they are, which reproduces PERF.md's torchvision time (326 ms on its reference run of
    this machine, 133 ms here, the same 2.4x as its ra7). Most of those RoIs lie off the
    64x64 map. psra7-map is an R-FCN head's case instead: the boxes of a 1024-pixel
    image (x0.8) at stride 16 (scale 1/16), two samples a side, all on the map."""
    def setup(device):
        g = torch.Generator().manual_seed(SEED)
        x = torch.randn(2, 490, 64, 64, generator=g).to(device)
        boxes, _ = random_boxes(2000, device)
        idx = torch.randint(0, 2, (2000, 1), generator=g).to(device=device, dtype=boxes.dtype)
        if on_map:
            return {"x": x, "rois": torch.cat([idx, boxes * 0.8], 1), "pooled": 7, "scale": 1 / 16, "extra": (2,)}
        return {"x": x, "rois": torch.cat([idx, boxes], 1), "pooled": 7, "scale": 1.0, "extra": (-1,)}
    return setup


def _roi_op(module, op, *extra):
    return lambda a: getattr(module, op)(a["x"], a["rois"], a["pooled"], a.get("scale", 0.25),
                                         *a.get("extra", extra))


def _roi_align(module, backward):
    def run(a):
        x = a["x"].detach().requires_grad_(backward)
        out = module.roi_align(x, a["rois"], a["pooled"], 0.25, 2, True)
        if not backward:
            return out
        out.backward(a["grad"])
        return x.grad
    return run


def _roi_backward(module, op, *extra):
    """Forward + backward of a pooling op, returning the input gradient. The output
    gradient (ones) is made once, on the first (warm-up) call, and reused, as ra7-bwd's
    is: allocating it per call (100 MB at rp7) timed torch's allocator, not the ops."""
    def run(a):
        x = a["x"].detach().requires_grad_(True)
        out = getattr(module, op)(x, a["rois"], a["pooled"], a.get("scale", 0.25), *a.get("extra", extra))
        grad = a.get("ones")
        if grad is None or grad.shape != out.shape or grad.device != out.device:
            grad = a["ones"] = torch.ones_like(out)
        out.backward(grad)
        return x.grad
    return run


def _close(ours, theirs):
    return torch.allclose(ours.cpu(), theirs.cpu(), rtol=1e-5, atol=1e-6, equal_nan=True)


def _roi_same(rtol):
    """CPU: bit-identical to torchvision. CUDA: both sum in their own order (and the
    backward with atomics), so the results agree to rounding."""
    def same(ours, theirs):
        if not ours.is_cuda:
            return ours.dtype == theirs.dtype and torch.equal(ours, theirs)
        return ours.dtype == theirs.dtype and torch.allclose(ours, theirs, rtol=rtol, atol=1e-5, equal_nan=True)
    return same


def _deterministic(fn):
    """fn under torch.use_deterministic_algorithms(True): tvops then uses its fixed-point
    CUDA backward, torchvision its pure-PyTorch roi_align (its deterministic option)."""
    def run(a):
        previous = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True)
        try:
            return fn(a)
        finally:
            torch.use_deterministic_algorithms(previous)
    return run


def _pairwise(op):
    return (lambda a: getattr(torchvision.ops, op)(a["a"], a["b"]),
            lambda a: getattr(tvn.ops, op)(a["a"], a["b"]))


WORKLOADS = [
    Workload("nms-1k", nms_setup(1_000), _nms_tv, _nms_tvn),
    Workload("nms-5k", nms_setup(5_000), _nms_tv, _nms_tvn),
    Workload("nms-20k", nms_setup(20_000), _nms_tv, _nms_tvn),
    # torchvision orders equal scores by an unstable sort, tvops by index: compare kept sets.
    Workload("bnms-20k-80", batched_nms_setup(20_000, 80), _bnms_tv, _bnms_tvn,
             available=lambda: hasattr(tvn.ops, "batched_nms"), same=_same_kept_set),
    Workload("ra7", roi_setup(7), _roi_align(torchvision.ops, False), _roi_align(tvn.ops, False),
             available=lambda: hasattr(tvn.ops, "roi_align"), same=_roi_same(1e-5)),
    Workload("ra14", roi_setup(14), _roi_align(torchvision.ops, False), _roi_align(tvn.ops, False),
             available=lambda: hasattr(tvn.ops, "roi_align"), same=_roi_same(1e-5)),
    Workload("ra7-bwd", roi_setup(7, backward=True), _roi_align(torchvision.ops, True), _roi_align(tvn.ops, True),
             available=lambda: hasattr(tvn.ops, "roi_align"), same=_roi_same(1e-4)),
    # Both sides deterministic (CUDA only differs from ra7-bwd; the CPU backward always is).
    # torchvision's deterministic CUDA path is a pure-PyTorch roi_align whose results differ
    # from its own kernel (forward by up to 2.3 here), so tvops is checked against the kernel.
    Workload("ra7-bwd-det", roi_setup(7, backward=True), _deterministic(_roi_align(torchvision.ops, True)),
             _deterministic(_roi_align(tvn.ops, True)), available=lambda: hasattr(tvn.ops, "roi_align"),
             same=_roi_same(1e-4), reference=_roi_align(torchvision.ops, True)),
    Workload("rp7", roi_setup(7), _roi_op(torchvision.ops, "roi_pool"), _roi_op(tvn.ops, "roi_pool"),
             available=lambda: hasattr(tvn.ops, "roi_pool"), same=_roi_same(0)),
    Workload("rp7-bwd", roi_setup(7), _roi_backward(torchvision.ops, "roi_pool"), _roi_backward(tvn.ops, "roi_pool"),
             available=lambda: hasattr(tvn.ops, "roi_pool"), same=_roi_same(1e-4)),
    Workload("psra7", psroi_setup(), _roi_op(torchvision.ops, "ps_roi_align"), _roi_op(tvn.ops, "ps_roi_align"),
             available=lambda: hasattr(tvn.ops, "ps_roi_align"), same=_roi_same(1e-5)),
    Workload("psra7-bwd", psroi_setup(), _roi_backward(torchvision.ops, "ps_roi_align"),
             _roi_backward(tvn.ops, "ps_roi_align"), available=lambda: hasattr(tvn.ops, "ps_roi_align"),
             same=_roi_same(1e-4)),
    Workload("psra7-map", psroi_setup(on_map=True), _roi_op(torchvision.ops, "ps_roi_align"),
             _roi_op(tvn.ops, "ps_roi_align"), available=lambda: hasattr(tvn.ops, "ps_roi_align"),
             same=_roi_same(1e-5)),
    # Not in PERF.md's table: the IoU matrices of a detection matcher (2000 proposals x 2000 boxes).
    Workload("box_iou-2k", pairwise_setup(2000, 2000), *_pairwise("box_iou"), same=_close,
             available=lambda: hasattr(tvn.ops, "box_iou")),
    Workload("ciou-2k", pairwise_setup(2000, 2000), *_pairwise("complete_box_iou"), same=_close,
             available=lambda: hasattr(tvn.ops, "complete_box_iou")),
]


# ---------------------------------------------------------------------------------------
# deform_conv2d (PERF.md dcn-s / dcn-l: DCNv2 with mask, 3x3, pad 1, Cout = Cin, 64x64).

def dcn_setup(batch, channels, backward=False):
    def setup(device):
        g = torch.Generator().manual_seed(SEED)
        n, c, hw = batch, channels, 64
        args = {
            "x": torch.randn(n, c, hw, hw, generator=g),
            "offset": torch.randn(n, 18, hw, hw, generator=g),
            "mask": torch.rand(n, 9, hw, hw, generator=g),
            "weight": torch.randn(c, c, 3, 3, generator=g) / (3 * c ** 0.5),
            "bias": torch.randn(c, generator=g),
            # The GEMM floor: the same multiply-adds through torch.matmul (PERF.md's target).
            "a": torch.randn(n * hw * hw, c * 9, generator=g),
            "b": torch.randn(c * 9, c, generator=g),
        }
        return {k: v.to(device) for k, v in args.items()} | {"backward": backward}
    return setup


def _dcn(module):
    def run(a):
        if not a["backward"]:
            with torch.no_grad():
                return module.deform_conv2d(a["x"], a["offset"], a["weight"], a["bias"], padding=1, mask=a["mask"])
        ins = [a[k].detach().requires_grad_() for k in ("x", "offset", "weight", "bias", "mask")]
        out = module.deform_conv2d(ins[0], ins[1], ins[2], ins[3], padding=1, mask=ins[4])
        out.backward(torch.ones_like(out))
        return [t.grad for t in ins]
    return run


def _dcn_close(ours, theirs):
    """Both sum thousands of float32 products in their own order: agree to 1e-4 of the
    largest magnitude, for the output or every gradient. On CUDA tvops multiplies in
    TF32 when torch.backends.cudnn.allow_tf32 is on (torch's default for convolutions;
    torchvision's kernel has no TF32 mode): 10-bit products, 5e-3 then."""
    pairs = list(zip(ours, theirs)) if isinstance(ours, list) else [(ours, theirs)]
    tol = 5e-3 if pairs[0][0].is_cuda and torch.backends.cudnn.allow_tf32 else 1e-4
    return all(float((o - t).abs().max()) <= tol * float(t.abs().max()) + 1e-6 for o, t in pairs)


def _gemm_floor(a):
    return a["a"] @ a["b"]


def _dcn_bf16(a):
    """tvops' bfloat16 forward (vdpbf16ps on avx512bf16) on the bf16-rounded inputs."""
    if "bf16" not in a:
        a["bf16"] = {k: a[k].bfloat16() for k in ("x", "offset", "weight", "bias", "mask")}
    b = a["bf16"]
    with torch.no_grad():
        return tvn.ops.deform_conv2d(b["x"], b["offset"], b["weight"], b["bias"], padding=1, mask=b["mask"])


def _dcn_float_of_bf16(module):
    """The same bf16-rounded inputs in float32 (torchvision has no bfloat16 CPU kernel)."""
    def run(a):
        if "bf16" not in a:
            _dcn_bf16(a)
        if "bf16_as_f32" not in a:  # converted once, outside the timed calls
            a["bf16_as_f32"] = {k: v.float() for k, v in a["bf16"].items()}
        f = a["bf16_as_f32"]
        with torch.no_grad():
            return module.deform_conv2d(f["x"], f["offset"], f["weight"], f["bias"], padding=1, mask=f["mask"])
    return run


def _dcn_bf16_close(ours, theirs):
    """bf16 columns and output: within 1% of the float32 result's magnitude."""
    return float((ours.float() - theirs).abs().max()) <= 1e-2 * float(theirs.abs().max())


WORKLOADS += [
    Workload(name, dcn_setup(n, c, bwd), _dcn(torchvision.ops), _dcn(tvn.ops), same=_dcn_close,
             available=lambda: hasattr(tvn.ops, "deform_conv2d"), extras={"torch.matmul (GEMM floor)": _gemm_floor},
             torchvision_reps=3)
    for name, n, c, bwd in [("dcn-s", 8, 64, False), ("dcn-s-bwd", 8, 64, True), ("dcn-l", 4, 256, False),
                            ("dcn-l-bwd", 4, 256, True)]
]
# bfloat16 forward: torchvision runs float32 (it has no bf16 CPU kernel); the extra
# column is tvops' own float32 forward, so its ratio is the bf16 path's gain.
WORKLOADS += [
    Workload(name, dcn_setup(n, c), _dcn_float_of_bf16(torchvision.ops), _dcn_bf16, same=_dcn_bf16_close,
             available=lambda: hasattr(tvn.ops, "deform_conv2d"),
             extras={"tvops float32": _dcn_float_of_bf16(tvn.ops)}, torchvision_reps=3)
    for name, n, c in [("dcn-s-bf16", 8, 64), ("dcn-l-bf16", 4, 256)]
]


# ---------------------------------------------------------------------------------------
# Image codecs (PERF.md: jpeg-512 / jpeg-1920 quality 90, png-512 / png-1920, of the
# skimage astronaut and it resized to 1920x1920; jpeg-batch64 = 64 jpeg-1920 decodes).

def _astronaut(size):
    import skimage.data
    img = torch.from_numpy(skimage.data.astronaut()).permute(2, 0, 1).contiguous()
    if size != img.shape[-1]:
        img = torch.nn.functional.interpolate(img[None].float(), size=(size, size), mode="bilinear",
                                              align_corners=False).round().clamp(0, 255).byte()[0]
    return img


def codec_setup(kind, size, batch=0):
    def setup(device):
        img = _astronaut(size)
        data = torchvision.io.encode_jpeg(img, quality=90) if kind == "jpeg" else torchvision.io.encode_png(img)
        args = {"data": data, "bytes": data.numpy().tobytes()}
        if batch:
            args["batch"] = [data.clone() for _ in range(batch)]
            args["batch_bytes"] = [args["bytes"]] * batch
        return args
    return setup


def _tv_decode(kind, contiguous=False):
    decode = torchvision.io.decode_jpeg if kind == "jpeg" else torchvision.io.decode_png
    return (lambda a: decode(a["data"]).contiguous()) if contiguous else (lambda a: decode(a["data"]))


def _tvn_decode(kind, **kw):
    decode = tvn.io.decode_jpeg if kind == "jpeg" else tvn.io.decode_png
    return lambda a: decode(a["data"], **kw)


def _simplejpeg(**kw):
    return {} if simplejpeg is None else {"simplejpeg": lambda a: simplejpeg.decode_jpeg(a["bytes"], **kw)}


def _same_list(ours, theirs):
    return len(ours) == len(theirs) and all(torch.equal(o, t) for o, t in zip(ours, theirs))


def _at_least(h, w):
    return lambda ours, theirs: ours.shape[0] == theirs.shape[0] and ours.shape[1] >= h and ours.shape[2] >= w


def _codec(name, setup, tv, ours, **kw):
    return Workload(name, setup, tv, ours, available=lambda: hasattr(tvn, "io"), per_isa=False, **kw)


WORKLOADS += [
    _codec("jpeg-512", codec_setup("jpeg", 512), _tv_decode("jpeg"), _tvn_decode("jpeg"), extras=_simplejpeg()),
    _codec("jpeg-1920", codec_setup("jpeg", 1920), _tv_decode("jpeg"), _tvn_decode("jpeg"), extras=_simplejpeg()),
    # torchvision returns a strided view of HWC memory; a contiguous CHW tensor costs a copy.
    _codec("jpeg-1920-chw", codec_setup("jpeg", 1920), _tv_decode("jpeg", contiguous=True), _tvn_decode("jpeg")),
    # Decode to >= 480x480 (DCT scaling 2/8) against full decodes: torchvision's and tvops'.
    # "tvops 1/8": the smallest scale (DC coefficients only, 240x240): what is left is
    # libjpeg-turbo's entropy decoding, the floor of any DCT-scaled decode.
    _codec("jpeg-1920-to480", codec_setup("jpeg", 1920), _tv_decode("jpeg"), _tvn_decode("jpeg", min_size=480),
           same=_at_least(480, 480), extras={"tvops full": _tvn_decode("jpeg"),
                                            "tvops 1/8": _tvn_decode("jpeg", min_size=1),
                                            **_simplejpeg(min_height=480, min_width=480)}),
    _codec("jpeg-batch64", codec_setup("jpeg", 1920, batch=64),
           lambda a: [torchvision.io.decode_jpeg(d) for d in a["batch"]],
           lambda a: tvn.io.decode_jpeg(a["batch"]), same=_same_list,
           extras={} if simplejpeg is None else {
               "simplejpeg": lambda a: [simplejpeg.decode_jpeg(b) for b in a["batch_bytes"]]}),
    _codec("png-512", codec_setup("png", 512), _tv_decode("png"), _tvn_decode("png")),
    _codec("png-1920", codec_setup("png", 1920), _tv_decode("png"), _tvn_decode("png")),
]


# ---------------------------------------------------------------------------------------
# Timing.

@dataclasses.dataclass
class TimingPolicy:
    min_reps: int = 10         # PERF.md: medians of >= 10 repetitions
    max_reps: int = 200
    budget_s: float = 1.0      # stop adding repetitions past min_reps once this is spent
    warmup_s: float = 0.2      # warm-up: at least one call, more while under this time
    max_warmup: int = 10


QUICK = TimingPolicy(min_reps=3, max_reps=20, budget_s=0.2, warmup_s=0.05, max_warmup=2)


def timed_call(fn, args, device):
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(args)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def measure(fn, args, device, policy):
    """Median seconds of fn(args), and its last result. Slow calls (torchvision nms at 20k
    takes ~1 s) get exactly min_reps repetitions; fast ones more, within the budget."""
    elapsed, out = timed_call(fn, args, device)
    warm, spent = 1, elapsed
    while warm < policy.max_warmup and spent < policy.warmup_s:
        elapsed, out = timed_call(fn, args, device)
        warm, spent = warm + 1, spent + elapsed
    times = []
    while len(times) < policy.min_reps or (len(times) < policy.max_reps and sum(times) < policy.budget_s):
        elapsed, out = timed_call(fn, args, device)
        times.append(elapsed)
    return statistics.median(times), len(times), out


def same_result(workload, ours, theirs):
    if workload.same is not None:
        return workload.same(ours, theirs)
    ours = ours.cpu() if isinstance(ours, torch.Tensor) else torch.as_tensor(ours)
    return ours.dtype == theirs.dtype and torch.equal(ours, theirs.cpu())


# ---------------------------------------------------------------------------------------
# Running and reporting.

def machine_info(device):
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": tvn.cpu_features().get("model", ""),
        "cpu_features": tvn.cpu_features(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "tvops_build_info": tvn.build_info(),
        "tvops_recommended_variant": list(tvn.recommended_variant()),
        "device": device,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["torch_cuda"] = torch.version.cuda
    return info


def run(workloads, device, thread_counts, isas, policy, log=print):
    rows = []
    torch_threads, tvn_threads, tvn_isa = torch.get_num_threads(), tvn.num_threads(), tvn.active_cpu_isa()
    try:
        for w in workloads:
            if not w.available():
                log(f"# {w.name}: skipped (tvops has no such op yet)")
                continue
            args = w.setup(device)
            try:
                w.tvops(args)
            except NotImplementedError as e:  # e.g. box ops without CUDA kernels
                log(f"# {w.name}: skipped on {device} ({e})")
                continue
            for threads in thread_counts:
                torch.set_num_threads(threads)
                tvn.set_num_threads(threads)
                tv_policy = policy if w.torchvision_reps is None else dataclasses.replace(
                    policy, min_reps=min(policy.min_reps, w.torchvision_reps), max_warmup=1)
                tv_s, tv_reps, tv_out = measure(w.torchvision, args, device, tv_policy)
                for isa in (isas if w.per_isa else ["-"]):
                    if isa != "-":
                        tvn.set_cpu_isa(isa)
                    ours_s, ours_reps, ours_out = measure(w.tvops, args, device, policy)
                    # Per tier: an extra may be tvops itself (the bf16 rows' float32 column).
                    extras_ms = {k: measure(f, args, device, policy)[0] * 1e3 for k, f in w.extras.items()}
                    row = {
                        "workload": w.name, "device": device, "isa": isa, "threads": threads,
                        "torchvision_ms": tv_s * 1e3, "tvops_ms": ours_s * 1e3, "speedup": tv_s / ours_s,
                        "torchvision_reps": tv_reps, "tvops_reps": ours_reps,
                        "identical": bool(same_result(w, ours_out, w.reference(args) if w.reference else tv_out)),
                        "extras_ms": extras_ms,
                    }
                    rows.append(row)
                    log(f"# {w.name} isa={isa} threads={threads}: torchvision {row['torchvision_ms']:.3f} ms "
                        f"({tv_reps} reps), tvops {row['tvops_ms']:.3f} ms ({ours_reps} reps), "
                        f"x{row['speedup']:.2f}{'' if row['identical'] else '  RESULTS DIFFER'}"
                        + "".join(f", {k} {v:.3f} ms" for k, v in extras_ms.items()))
    finally:
        torch.set_num_threads(torch_threads)
        tvn.set_num_threads(tvn_threads)
        tvn.set_cpu_isa(tvn_isa)
    return rows


def _ms(x):
    return f"{x:.1f}" if x >= 100 else f"{x:.2f}" if x >= 1 else f"{x:.3f}"


def markdown_table(rows):
    lines = ["| workload | isa | threads | torchvision ms | tvops ms | speedup | others ms (tvops faster by) |",
             "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        flag = "" if r["identical"] else " **results differ**"
        others = ", ".join(f"{k} {_ms(v)} ({v / r['tvops_ms']:.2f}x)" for k, v in r.get("extras_ms", {}).items())
        speedup = f"{r['speedup']:.1f}x" if r["speedup"] >= 10 else f"{r['speedup']:.2f}x"
        lines.append(f"| {r['workload']} | {r['isa']} | {r['threads']} | {_ms(r['torchvision_ms'])} | "
                     f"{_ms(r['tvops_ms'])} | {speedup}{flag} | {others} |")
    return "\n".join(lines)


def markdown_report(rows, info, policy):
    features = info["cpu_features"]
    bi = info["tvops_build_info"]
    head = [
        f"# tvops vs torchvision ({info['device']})",
        "",
        f"- date: {info['date']}",
        f"- machine: {info['cpu_model']} ({features.get('logical_cores')} logical cores, {info['platform']})"
        + (f", GPU {info['gpu']}" if "gpu" in info else ""),
        f"- torch {info['torch']}, torchvision {info['torchvision']}, python {info['python']}",
        f"- tvops {bi.get('version')} variant {bi.get('variant')}, {bi.get('compiler')}, {bi.get('build_type', '')}",
        f"- median of >= {policy.min_reps} repetitions after warm-up; speedup = torchvision / tvops",
        f"- all results identical to torchvision: {'yes' if all(r['identical'] for r in rows) else 'NO'}",
        "",
    ]
    return "\n".join(head) + markdown_table(rows) + "\n"


def bar_chart(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    series = list(dict.fromkeys((r["isa"], r["threads"]) for r in rows))
    by_key = {(r["workload"], r["isa"], r["threads"]): r["speedup"] for r in rows}
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(workloads) * max(1, len(series)) ** 0.5), 4.5))
    for k, (isa, threads) in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(workloads))]
        ys = [by_key.get((w, isa, threads), 0.0) for w in workloads]
        bars = ax.bar(xs, ys, width, label=f"{isa}, {threads} thr" if isa != "-" else f"{threads} thr")
        ax.bar_label(bars, labels=[f"{y:.0f}" if y >= 10 else f"{y:.1f}" for y in ys], fontsize=7)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(workloads)), workloads)
    ax.set_ylabel("speedup over torchvision (x, log scale)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--quick", action="store_true", help="few repetitions: a smoke test, not a measurement")
    p.add_argument("--out", default=os.path.join("benchmarks", "results"), help="directory for JSON, markdown, PNG")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--workloads", default="", help="comma-separated workload names (default: all)")
    p.add_argument("--isa", default="", help="comma-separated CPU ISA tiers (default: all available)")
    return p.parse_args(argv)


def main(argv=None):
    opts = parse_args(argv)
    if opts.device == "cuda" and not torch.cuda.is_available():
        print("compare.py: --device cuda, but torch sees no CUDA device; nothing to do", file=sys.stderr)
        return 0
    policy = QUICK if opts.quick else TimingPolicy()
    thread_counts = [int(t) for t in opts.threads.split(",") if t.strip()]
    workloads = WORKLOADS
    if opts.workloads:
        wanted = [w.strip() for w in opts.workloads.split(",") if w.strip()]
        unknown = set(wanted) - {w.name for w in WORKLOADS}
        if unknown:
            print(f"compare.py: unknown workloads {sorted(unknown)}; known: {[w.name for w in WORKLOADS]}",
                  file=sys.stderr)
            return 2
        workloads = [w for w in WORKLOADS if w.name in wanted]
    if opts.device == "cuda":
        isas, thread_counts = ["-"], [torch.get_num_threads()]  # host threads and CPU tiers don't matter there
    else:
        isas = [i.strip() for i in opts.isa.split(",") if i.strip()] or tvn.available_cpu_isas()

    info = machine_info(opts.device)
    print(f"# {info['cpu_model']}, {info['cpu_features'].get('logical_cores')} logical cores; torch {info['torch']}, "
          f"torchvision {info['torchvision']}, tvops {info['tvops_build_info'].get('version')} "
          f"({info['tvops_build_info'].get('variant')}); device {opts.device}"
          + (f" ({info['gpu']})" if "gpu" in info else ""), flush=True)
    rows = run(workloads, opts.device, thread_counts, isas, policy, log=lambda m: print(m, flush=True))
    if not rows:
        print("compare.py: no workload ran", file=sys.stderr)
        return 1
    print()
    print(markdown_table(rows))

    os.makedirs(opts.out, exist_ok=True)
    stem = os.path.join(opts.out, f"compare-{opts.device}")
    with open(stem + ".json", "w") as f:
        json.dump({"machine": info, "quick": opts.quick, "policy": dataclasses.asdict(policy),
                   "results": rows}, f, indent=2)
        f.write("\n")
    with open(stem + ".md", "w") as f:
        f.write(markdown_report(rows, info, policy))
    title = f"tvops vs torchvision, {info.get('gpu', info['cpu_model'])} ({opts.device})"
    bar_chart(rows, stem + ".png", title)
    print(f"\nwrote {stem}.json, {stem}.md, {stem}.png")
    if not all(r["identical"] for r in rows):
        print("compare.py: some tvops results differ from torchvision's", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
