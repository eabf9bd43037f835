#!/usr/bin/env python
"""CUDA deform_conv2d: tvops against torchvision in the same run (PERF.md workloads
dcn-s, dcn-l, and dcn-xl = B16 C256 128x128 forward), forward and forward+backward,
float32 in TF32 and exact mode, float16 and bfloat16 (torchvision has no bfloat16
kernel), with the peak extra memory of each call.

Time: CUDA events around back-to-back calls through the public Python ops (autograd
for forward+backward), median of 5 groups after a warm-up. Memory: the peak bytes a
call allocates beyond what existed before it, less its outputs (and gradients):
torch's caching allocator for torchvision (torch.cuda.max_memory_allocated), and for
tvops, which allocates from CUDA's default stream-ordered pool, the pool's used-memory
high-water mark (cuMemPoolGetAttribute, reset before the call) plus torch's.

    PYTHONPATH=build/dev/python python benchmarks/python/cuda_deform_conv.py --out DIR [--profile]
"""
import argparse
import ctypes
import json
import os
import subprocess

import torch
import torchvision

from cuda_roi_timing import gpu_ms  # CUDA-event medians of groups of calls

import torchvision_native as tvn

WORKLOADS = {  # name: (batch, channels in = out, size)
    "dcn-s": (8, 64, 64),
    "dcn-l": (4, 256, 64),
    "dcn-xl": (16, 256, 128),
}


class Pool:
    """The device's default CUDA memory pool (where tvops allocates), through the driver API."""

    USED_MEM_CURRENT, USED_MEM_HIGH = 7, 8

    def __init__(self, device=0):
        torch.zeros(1, device="cuda")  # torch initialises the driver lazily
        self.cuda = ctypes.CDLL("libcuda.so.1")
        assert self.cuda.cuInit(0) == 0
        dev = ctypes.c_int()
        assert self.cuda.cuDeviceGet(ctypes.byref(dev), device) == 0
        self.pool = ctypes.c_void_p()
        assert self.cuda.cuDeviceGetDefaultMemPool(ctypes.byref(self.pool), dev) == 0

    def get(self, attr):
        v = ctypes.c_uint64()
        assert self.cuda.cuMemPoolGetAttribute(self.pool, attr, ctypes.byref(v)) == 0
        return v.value

    def reset_high(self):
        zero = ctypes.c_uint64(0)
        assert self.cuda.cuMemPoolSetAttribute(self.pool, self.USED_MEM_HIGH, ctypes.byref(zero)) == 0


def kernel_ms(fn, reps=10):
    """GPU time of the kernels (and memsets) one call launches: torch.profiler's device
    time over `reps` calls. Unlike gpu_ms, host overhead between launches does not count."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
    total_us = sum(getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0))
                   for e in prof.key_averages())
    return total_us / reps / 1000


def make_inputs(batch, channels, size, dtype, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    k = 3
    x = torch.randn(batch, channels, size, size, device="cuda", generator=g).to(dtype)
    offset = (torch.randn(batch, 2 * k * k, size, size, device="cuda", generator=g) * 2).to(dtype)
    mask = torch.rand(batch, k * k, size, size, device="cuda", generator=g).to(dtype)
    weight = (torch.randn(channels, channels, k, k, device="cuda", generator=g) / (channels * 9) ** 0.5).to(dtype)
    bias = torch.randn(channels, device="cuda", generator=g).to(dtype)
    grad = torch.randn(batch, channels, size, size, device="cuda", generator=g).to(dtype)
    return dict(input=x, offset=offset, weight=weight, bias=bias, mask=mask, padding=(1, 1)), grad


def call(module, args, backward, grad):
    if not backward:
        with torch.no_grad():
            return module.ops.deform_conv2d(**args)
    a = {k: (v.detach().requires_grad_() if torch.is_tensor(v) else v) for k, v in args.items()}
    out = module.ops.deform_conv2d(**a)
    out.backward(grad)
    return [out] + [a[k].grad for k in ("input", "offset", "weight", "bias", "mask")]


def result_bytes(res):
    return sum(t.numel() * t.element_size() for t in (res if isinstance(res, list) else [res]))


def peak_extra_mib(module, args, backward, grad, pool):
    """Peak bytes allocated during one call beyond what existed before, less its results."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base_torch = torch.cuda.memory_allocated()
    base_pool = pool.get(Pool.USED_MEM_CURRENT)
    pool.reset_high()
    res = call(module, args, backward, grad)
    torch.cuda.synchronize()
    peak = (torch.cuda.max_memory_allocated() - base_torch) + max(0, pool.get(Pool.USED_MEM_HIGH) - base_pool)
    extra = peak - result_bytes(res)
    del res
    return extra / 2**20


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=".")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--profile", action="store_true", help="per-kernel times of one dcn-l forward+backward")
    p.add_argument("--once", choices=["float32", "bfloat16"], help="one dcn-l forward+backward (ncu)")
    opts = p.parse_args()
    if opts.once:
        args, grad = make_inputs(4, 256, 64, getattr(torch, opts.once))
        call(tvn, args, True, grad)
        torch.cuda.synchronize()
        return
    torch.backends.cuda.matmul.allow_tf32 = False  # torchvision's addmm: exact float32, as by default
    pool = Pool()
    rows = []
    modes = [("float32 tf32", torch.float32, True), ("float32 exact", torch.float32, False),
             ("bfloat16", torch.bfloat16, True), ("float16", torch.float16, True)]
    # Two passes over the same inputs: call times and memory first, then the kernel times.
    # torch.profiler leaves CUPTI attached, which slows every later kernel launch on the
    # host: timed after it, host-bound calls (small shapes, forward+backward) would run
    # slower than a user's do.
    for measure in ("time", "kernels"):
        i = 0
        for wname, (batch, ch, size) in WORKLOADS.items():
            for mname, dtype, tf32 in modes:
                if wname == "dcn-xl" and mname not in ("float32 tf32", "bfloat16"):
                    continue
                args, grad = make_inputs(batch, ch, size, dtype)
                flops = 2.0 * batch * size * size * ch * ch * 9
                for backward in (False, True):
                    if wname == "dcn-xl" and backward:
                        continue
                    torch.backends.cudnn.allow_tf32 = tf32
                    ours = lambda: call(tvn, args, backward, grad)
                    theirs = lambda: call(torchvision, args, backward, grad)
                    if measure == "time":
                        reps = max(3, opts.reps // (8 if wname == "dcn-xl" else 1))
                        row = dict(workload=wname, mode=mname, pass_="fwd+bwd" if backward else "fwd",
                                   shape=f"B{batch} C{ch} {size}x{size} 3x3 pad 1 mask")
                        row["tvops_ms"] = gpu_ms(ours, reps)
                        row["tvops_extra_mib"] = peak_extra_mib(tvn, args, backward, grad, pool)
                        if dtype != torch.bfloat16:
                            row["torchvision_ms"] = gpu_ms(theirs, reps)
                            row["torchvision_extra_mib"] = peak_extra_mib(torchvision, args, backward, grad, pool)
                        row["tvops_tflops"] = flops * (3 if backward else 1) / row["tvops_ms"] / 1e9
                        rows.append(row)
                        continue
                    row = rows[i]
                    i += 1
                    row["tvops_kernel_ms"] = kernel_ms(ours)
                    if dtype != torch.bfloat16:
                        row["torchvision_kernel_ms"] = kernel_ms(theirs)
                    tv = row.get("torchvision_ms")
                    print(f"{wname:7s} {mname:14s} {row['pass_']:8s} tvops {row['tvops_ms']:7.3f} ms "
                          f"[kernels {row['tvops_kernel_ms']:7.3f}] ({row['tvops_extra_mib']:7.1f} MiB)  torchvision "
                          + (f"{tv:7.3f} ms [kernels {row['torchvision_kernel_ms']:7.3f}] "
                             f"({row['torchvision_extra_mib']:7.1f} MiB)  {tv / row['tvops_ms']:5.1f}x"
                             if tv else "   (none)"), flush=True)
                del args, grad
                torch.cuda.empty_cache()
    torch.backends.cudnn.allow_tf32 = True

    rev = os.environ.get("TVOPS_GIT_REV", "")
    if not rev:
        try:
            rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip()
        except OSError:
            pass
    meta = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, torchvision=torchvision.__version__,
                git=rev, method="ms: CUDA events around back-to-back calls of the public Python ops, median "
                            "of 5 groups (includes host time where the host is slower than the GPU); kernel ms: "
                            "the GPU time of the kernels a call launches (torch.profiler); extra MiB: peak "
                            "allocated during a call beyond what existed before it, less its outputs")
    os.makedirs(opts.out, exist_ok=True)
    with open(os.path.join(opts.out, "cuda-deform-conv.json"), "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=1)
    lines = [f"# CUDA deform_conv2d, {meta['device']} (torch {meta['torch']}, torchvision {meta['torchvision']}, "
             f"tvops {rev})", "", meta["method"] + ".", "",
             "| workload | mode | pass | torchvision ms | tvops ms | speed-up | torchvision kernel ms | "
             "tvops kernel ms | torchvision extra MiB | tvops extra MiB | tvops TFLOP/s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        tv = r.get("torchvision_ms")
        cells = [r["workload"], r["mode"], r["pass_"], f"{tv:.3f}" if tv else "-", f"{r['tvops_ms']:.3f}",
                 f"{tv / r['tvops_ms']:.1f}x" if tv else "-",
                 f"{r['torchvision_kernel_ms']:.3f}" if tv else "-", f"{r['tvops_kernel_ms']:.3f}",
                 f"{r['torchvision_extra_mib']:.0f}" if tv else "-", f"{r['tvops_extra_mib']:.1f}",
                 f"{r['tvops_tflops']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    with open(os.path.join(opts.out, "cuda-deform-conv.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

    if opts.profile:
        from torch.profiler import ProfilerActivity, profile

        for mname, dtype, tf32 in modes[:3]:
            torch.backends.cudnn.allow_tf32 = tf32
            args, grad = make_inputs(4, 256, 64, dtype)
            call(tvn, args, True, grad)
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(5):
                    call(tvn, args, True, grad)
                torch.cuda.synchronize()
            print(f"\n## dcn-l {mname} fwd+bwd, per kernel (5 calls)")
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=90))
        torch.backends.cudnn.allow_tf32 = True


if __name__ == "__main__":
    main()
