#!/usr/bin/env python
"""Peak extra host memory of deform_conv2d, tvops against torchvision (PERF.md dcn-s /
dcn-l, float32, one thread): each measurement runs in a fresh process, which builds the
inputs, records its peak RSS, runs the op once (forward, or forward + backward) and
reports the growth of the peak. The output (and gradients) count for both; torchvision's
extra is dominated by its im2col buffer (Cin * kh * kw x up to 32 images x Ho * Wo).

    PYTHONPATH=build/dev/python python benchmarks/python/deform_conv_memory.py [--out DIR]
"""
import argparse
import json
import os
import resource
import subprocess
import sys

WORKLOADS = {"dcn-s": (8, 64), "dcn-l": (4, 256)}


def child(lib, name, backward):
    import torch
    import torchvision
    import torchvision_native as tvn

    torch.set_num_threads(1)
    tvn.set_num_threads(1)
    n, c = WORKLOADS[name]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, 64, 64, generator=g, requires_grad=backward)
    off = torch.randn(n, 18, 64, 64, generator=g, requires_grad=backward)
    m = torch.rand(n, 9, 64, 64, generator=g, requires_grad=backward)
    w = torch.randn(c, c, 3, 3, generator=g, requires_grad=backward)
    b = torch.randn(c, generator=g, requires_grad=backward)
    module = tvn.ops if lib == "tvops" else torchvision.ops
    grad = torch.ones(n, c, 64, 64)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = module.deform_conv2d(x, off, w, b, padding=1, mask=m)
    if backward:
        out.backward(grad)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    output_mb = out.numel() * 4 / 2**20
    print(json.dumps({"extra_mb": (after - before) / 1024, "output_mb": output_mb}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join("benchmarks", "results"))
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    opts = p.parse_args()
    if opts.child:
        return child(opts.child[0], opts.child[1], opts.child[2] == "1")
    rows = []
    for name in WORKLOADS:
        for backward in (False, True):
            row = {"workload": name + ("-bwd" if backward else "")}
            for lib in ("torchvision", "tvops"):
                res = subprocess.run([sys.executable, __file__, "--child", lib, name, str(int(backward))],
                                     capture_output=True, text=True, check=True)
                row[lib] = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{row['workload']}: torchvision +{row['torchvision']['extra_mb']:.0f} MB, "
                  f"tvops +{row['tvops']['extra_mb']:.0f} MB (output {row['tvops']['output_mb']:.0f} MB)", flush=True)
    os.makedirs(opts.out, exist_ok=True)
    with open(os.path.join(opts.out, "deform-conv-memory-cpu.json"), "w") as f:
        json.dump(rows, f, indent=2)
        f.write("\n")
    lines = ["# deform_conv2d peak extra host memory (float32, one thread)", "",
             "Growth of the process's peak RSS over one call, inputs already built; the output",
             "(and, with -bwd, the gradients) are part of both columns.", "",
             "| workload | torchvision MB | tvops MB | tvops / torchvision |", "|---|---:|---:|---:|"]
    for r in rows:
        tv, us = r["torchvision"]["extra_mb"], r["tvops"]["extra_mb"]
        lines.append(f"| {r['workload']} | {tv:.0f} | {us:.0f} | {us / tv:.2f} |")
    with open(os.path.join(opts.out, "deform-conv-memory-cpu.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
