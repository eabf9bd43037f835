#!/usr/bin/env python
"""End-to-end inference of torchvision's detection models, unpatched against
torchvision_native.patch_torchvision(), in one run, on the CPU or a CUDA device:

    PYTHONPATH=build/dev/python python benchmarks/python/detection_models.py [--threads 1,2] [--reps 3]
        [--device cpu|cuda] [--out benchmarks/results]

Models: fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn, retinanet_resnet50_fpn with
random weights (weights=None, weights_backbone=None: nothing downloaded), eval mode,
torch.inference_mode, one 480 x 640 image (the models' transform resizes it to
800 x 1066). Random heads score every anchor near RetinaNet's 0.01 prior, below its
default 0.05 threshold, which would leave its NMS nothing to do; it runs with
score_thresh=0.01 so that its candidates reach NMS as with trained weights. Both
variants must give the same detections (checked).

"Ops" is the time inside the functions patch_torchvision serves (MultiScaleRoIAlign's
forward, which calls roi_align; batched_nms, which calls nms; remove_small_boxes;
box_iou; box_area), measured by timing wrappers around them in both
variants (outermost call only). Thread counts set torch's and tvops' pools alike.
On CUDA the wrappers synchronise the device around each timed call (in both variants),
and the detections must have the same count and labels, with boxes, scores and mask
probabilities within 2e-2 (both libraries' CUDA kernels round in their own order; the
largest differences are in the JSON). Writes <out>/detection-models-<device>.{json,md}.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import torch
import torchvision
from torchvision.models import detection

import torchvision_native as tvn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import machine_info  # noqa: E402

MODELS = {
    "fasterrcnn_resnet50_fpn": (detection.fasterrcnn_resnet50_fpn, {}),
    "maskrcnn_resnet50_fpn": (detection.maskrcnn_resnet50_fpn, {}),
    "retinanet_resnet50_fpn": (detection.retinanet_resnet50_fpn, {"score_thresh": 0.01}),
}
TIMED_FUNCTIONS = ("batched_nms", "nms", "roi_align", "remove_small_boxes", "box_iou", "box_area")


class OpTimer:
    """Seconds spent in the patched functions (outermost calls), per name."""

    def __init__(self):
        self.seconds, self.depth = {}, 0

    def wrap(self, name, fn):
        def timed(*args, **kwargs):
            self.depth += 1
            if self.depth == 1:
                sync()
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.depth -= 1
                if self.depth == 0:
                    sync()
                    self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        return timed

    def total(self):
        return sum(self.seconds.values())


@contextlib.contextmanager
def timing_wrappers(timer):
    """Wraps whatever torchvision's modules hold now (torchvision's functions, or the
    patched ones) and MultiScaleRoIAlign.forward; undone on exit."""
    saved = []
    for modname, module in list(sys.modules.items()):
        if module is None or not (modname == "torchvision" or modname.startswith("torchvision.")):
            continue
        for attr in TIMED_FUNCTIONS:
            fn = vars(module).get(attr)
            if callable(fn) and not isinstance(fn, type) and not hasattr(fn, "_timed"):
                wrapped = timer.wrap(attr, fn)
                wrapped._timed = True
                saved.append((module, attr, fn))
                setattr(module, attr, wrapped)
    cls = torchvision.ops.poolers.MultiScaleRoIAlign
    forward = cls.forward
    cls.forward = timer.wrap("MultiScaleRoIAlign", forward)
    try:
        yield
    finally:
        cls.forward = forward
        for module, attr, fn in reversed(saved):
            setattr(module, attr, fn)


def image():
    g = torch.Generator().manual_seed(0)
    # A smooth random picture (noise gives the backbone nothing unusual either way).
    small = torch.rand(3, 30, 40, generator=g)
    return torch.nn.functional.interpolate(small[None], size=(480, 640), mode="bilinear", align_corners=False)[0]


DEVICE = "cpu"


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def run_once(model, images):
    timer = OpTimer()
    with torch.inference_mode(), timing_wrappers(timer):
        sync()
        t0 = time.perf_counter()
        out = model(images)
        sync()
        total = time.perf_counter() - t0
    return total, timer.total(), dict(timer.seconds), out


def max_difference(a, b):
    """The largest |difference| per output key (CUDA: both libraries round in their own order)."""
    return {k: float((x[k].float() - y[k].float()).abs().max()) if x[k].numel() else 0.0
            for x, y in zip(a, b) for k in x}


def same_detections(a, b):
    if DEVICE == "cuda":  # same detections and labels; boxes, scores and masks to rounding
        return all(x.keys() == y.keys() and all(x[k].shape == y[k].shape for k in x) and
                   torch.equal(x["labels"], y["labels"]) for x, y in zip(a, b)) and \
            all(v <= 2e-2 for v in max_difference(a, b).values())
    return all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for x, y in zip(a, b))


def bench_model(name, threads, reps, log):
    builder, kwargs = MODELS[name]
    torch.manual_seed(0)
    model = builder(weights=None, weights_backbone=None, **kwargs).eval().to(DEVICE)
    images = [image().to(DEVICE)]
    rows = []
    for n in threads:
        torch.set_num_threads(n)
        tvn.set_num_threads(n)
        samples = {"torchvision": [], "patched": []}
        outputs = {}
        run_once(model, images)  # warm-up, unpatched
        with tvn.patched_torchvision():
            run_once(model, images)  # warm-up, patched
        for _ in range(reps):  # interleaved: drift hits both alike
            for variant in ("torchvision", "patched"):
                ctx = tvn.patched_torchvision() if variant == "patched" else contextlib.nullcontext()
                with ctx:
                    total, ops, per_op, out = run_once(model, images)
                samples[variant].append((total, ops, per_op))
                outputs[variant] = out
        assert same_detections(outputs["torchvision"], outputs["patched"]), f"{name}: detections differ"
        row = {"model": name, "threads": n, "detections": len(outputs["patched"][0]["boxes"]),
               "max_difference": max_difference(outputs["torchvision"], outputs["patched"])}
        for variant, s in samples.items():
            row[f"{variant}_ms"] = 1e3 * statistics.median(t for t, _, _ in s)
            row[f"{variant}_ops_ms"] = 1e3 * statistics.median(o for _, o, _ in s)
            row[f"{variant}_per_op_ms"] = {k: 1e3 * statistics.median(p.get(k, 0.0) for _, _, p in s)
                                           for k in s[0][2]}
        row["speedup"] = row["torchvision_ms"] / row["patched_ms"]
        row["ops_speedup"] = row["torchvision_ops_ms"] / row["patched_ops_ms"]
        log(f"{name} threads={n}: {row['torchvision_ms']:.0f} -> {row['patched_ms']:.0f} ms "
            f"({row['speedup']:.2f}x); ops {row['torchvision_ops_ms']:.0f} -> {row['patched_ops_ms']:.1f} ms "
            f"({row['ops_speedup']:.1f}x)")
        rows.append(row)
    return rows


def markdown(rows, info, reps):
    lines = [
        f"# Detection models on {info.get('gpu', 'the CPU')}: torchvision against patch_torchvision()",
        "",
        f"{info['cpu_model']} ({info['cpu_features'].get('logical_cores')} cores); torch {info['torch']}, "
        f"torchvision {info['torchvision']}, tvops {info['tvops_build_info']['variant']} "
        f"(`benchmarks/python/detection_models.py`). One 480 x 640 image (resized to 800 x 1066 by the "
        f"models), random weights, inference mode; median of {reps} interleaved runs, milliseconds. "
        + ("Same detections in both variants. " if DEVICE == "cpu" else
           "Same detections and labels in both variants; boxes, scores and masks to rounding (largest "
           "differences in the JSON). ")
        + "\"ops\" = time inside what patch_torchvision serves: "
        "MultiScaleRoIAlign (roi_align), batched_nms (nms), remove_small_boxes, box_iou, box_area.",
        "",
        "| model | threads | torchvision | patched | speedup | ops, torchvision | ops, patched | ops speedup | "
        "ops share (torchvision -> patched) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        share_tv = r["torchvision_ops_ms"] / r["torchvision_ms"]
        share_p = r["patched_ops_ms"] / r["patched_ms"]
        lines.append(f"| {r['model']} | {r['threads']} | {r['torchvision_ms']:.0f} | {r['patched_ms']:.0f} | "
                     f"{r['speedup']:.2f}x | {r['torchvision_ops_ms']:.0f} | {r['patched_ops_ms']:.1f} | "
                     f"{r['ops_speedup']:.1f}x | {share_tv:.0%} -> {share_p:.1%} |")
    lines += ["", "Per function (ms, torchvision -> patched):", ""]
    for r in rows:
        parts = [f"{k} {r['torchvision_per_op_ms'].get(k, 0):.1f} -> {r['patched_per_op_ms'].get(k, 0):.2f}"
                 for k in sorted(set(r["torchvision_per_op_ms"]) | set(r["patched_per_op_ms"]))]
        lines.append(f"- {r['model']}, {r['threads']} thread(s): " + "; ".join(parts))
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = args.device
    threads = [int(t) for t in args.threads.split(",")]
    rows = []
    for name in args.models.split(","):
        rows += bench_model(name, threads, args.reps, lambda s: print(s, flush=True))
    info = machine_info(DEVICE)
    report = markdown(rows, info, args.reps)
    print(report)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"detection-models-{DEVICE}.json"), "w") as f:
        json.dump({"machine": info, "reps": args.reps, "rows": rows}, f, indent=1)
    with open(os.path.join(args.out, f"detection-models-{DEVICE}.md"), "w") as f:
        f.write(report)


if __name__ == "__main__":
    main()
