"""CUDA nms and batched_nms at 20k-100k boxes against torchvision (GPU machine only):
identical indices and median times, as a markdown table."""

import torch
import torchvision

import torchvision_native as tvn
from cuda_events import median_ms


def boxes(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 1000
    wh = 4 + torch.rand(n, 2, generator=g) * 200
    return torch.cat([xy, xy + wh], 1).cuda(), torch.rand(n, generator=g).cuda(), \
        torch.randint(0, 80, (n,), generator=g).cuda()


def main():
    print("| workload | torchvision ms | tvops ms | speedup | identical |\n|---|---:|---:|---:|---|")
    for n in (20_000, 50_000, 100_000):
        b, s, c = boxes(n)
        same = torch.equal(tvn.ops.nms(b, s, 0.5), torchvision.ops.nms(b, s, 0.5))
        tv, ours = median_ms(lambda: torchvision.ops.nms(b, s, 0.5)), median_ms(lambda: tvn.ops.nms(b, s, 0.5))
        print(f"| nms-{n // 1000}k | {tv:.2f} | {ours:.2f} | {tv / ours:.1f}x | {same} |")
    for n in (20_000, 200_000):
        b, s, c = boxes(n, 1)
        ref, out = torchvision.ops.batched_nms(b, s, c, 0.5), tvn.ops.batched_nms(b, s, c, 0.5)
        same = torch.equal(out.sort()[0], ref.sort()[0])
        tv = median_ms(lambda: torchvision.ops.batched_nms(b, s, c, 0.5), 10)
        ours = median_ms(lambda: tvn.ops.batched_nms(b, s, c, 0.5), 10)
        print(f"| bnms-{n // 1000}k-80 | {tv:.2f} | {ours:.2f} | {tv / ours:.1f}x | {same} |")


if __name__ == "__main__":
    main()
