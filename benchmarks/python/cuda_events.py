"""Median milliseconds of single CUDA calls, each timed by events and waited for: the
events around one call also count the host's time between its launches, as a user of
the op sees it. Shared by the GPU-machine scripts (cuda_*.py)."""
import statistics

import torch


def median_ms(fn, reps=20, warmup=1):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)
