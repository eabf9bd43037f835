"""GPU JPEG decode (nvJPEG) against torchvision's decode_jpeg(device="cuda") on the GPU
machine: PERF.md's jpeg-512, jpeg-1920 and jpeg-batch64 (64 jpeg-1920 in one call),
identical pixels and median ms (CUDA events around the whole call), as a markdown table.

    PYTHONPATH=build/dev/python python benchmarks/python/cuda_jpeg_timing.py
"""
import sys
from pathlib import Path

import torch
import torchvision

import torchvision_native as tvn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import codec_setup  # noqa: E402  (the same images as the CPU table)
from cuda_nms_scaling import median_ms  # noqa: E402


def main():
    print(f"# {torch.cuda.get_device_name()}; torch {torch.__version__}, torchvision {torchvision.__version__}")
    print("| workload | torchvision ms | tvops ms | speedup | identical |\n|---|---:|---:|---:|---|")
    for name, size, batch in (("jpeg-512", 512, 0), ("jpeg-1920", 1920, 0), ("jpeg-batch64", 1920, 64)):
        a = codec_setup("jpeg", size, batch)("cpu")
        data = a["batch"] if batch else a["data"]
        ours = lambda: tvn.io.decode_jpeg(data, device="cuda")  # noqa: E731
        theirs = lambda: torchvision.io.decode_jpeg(data, device="cuda")  # noqa: E731
        o, t = ours(), theirs()
        same = all(torch.equal(x, y) for x, y in zip(o, t)) if batch else torch.equal(o, t)
        tv, us = median_ms(theirs, 10 if batch else 20), median_ms(ours, 10 if batch else 20)
        print(f"| {name} | {tv:.3f} | {us:.3f} | {tv / us:.2f}x | {same} |")


if __name__ == "__main__":
    main()
