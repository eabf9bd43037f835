"""CUDA ops on a GPU other than the current one, and on two GPUs at once from two
threads, each on its own stream (skipped with fewer than two CUDA devices)."""
import threading

import pytest
import torch
import torchvision

import torchvision_native as tvn
from boxes import feature_map, random_boxes, random_rois

two_gpus = pytest.mark.skipif(not (torch.cuda.is_available() and torch.cuda.device_count() >= 2),
                              reason="needs two CUDA devices")
pytestmark = [pytest.mark.cuda, two_gpus]


def inputs(device, seed):
    boxes, scores = random_boxes(20000, seed=seed)
    idxs = torch.randint(0, 80, (20000,), generator=torch.Generator().manual_seed(seed))
    x, rois = feature_map(n=2, c=98, h=50, w=60, seed=seed), random_rois(500, seed=seed)
    return [t.to(device) for t in (boxes, scores, idxs, x, rois)]


def results(ops, boxes, scores, idxs, x, rois):
    """nms and batched_nms indices, roi_align forward and input gradient, roi_pool and
    ps_roi_align outputs, through `ops` (torchvision.ops or tvn.ops)."""
    xg = x.detach().requires_grad_()
    out = ops.roi_align(xg, rois, 7, 0.25, 2, True)
    out.backward(torch.ones_like(out))
    return [ops.nms(boxes, scores, 0.5), ops.batched_nms(boxes, scores, idxs, 0.5), out.detach(), xg.grad,
            ops.roi_pool(x, rois, 7, 0.25), ops.ps_roi_align(x, rois, 7, 0.25, 2)]


def assert_same(ours, ref):
    for k, (a, b) in enumerate(zip(ours, ref)):
        assert a.device == b.device, k
        if a.dtype == torch.int64:
            assert torch.equal(a, b), k
        else:  # float atomics in the backward: sums in any order
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_ops_run_on_their_tensors_device_not_the_current_one():
    torch.cuda.set_device(0)
    data = inputs("cuda:1", seed=1)
    ours = results(tvn.ops, *data)
    assert torch.cuda.current_device() == 0
    assert all(t.device == torch.device("cuda:1") for t in ours)
    assert_same(ours, results(torchvision.ops, *data))


def test_two_threads_drive_two_gpus_at_once():
    data = [inputs(f"cuda:{d}", seed=10 + d) for d in range(2)]
    refs = [results(torchvision.ops, *data[d]) for d in range(2)]
    torch.cuda.synchronize(0), torch.cuda.synchronize(1)
    errors, barrier = [], threading.Barrier(2)

    def drive(d):
        try:
            stream = torch.cuda.Stream(device=f"cuda:{d}")
            with torch.cuda.device(d), torch.cuda.stream(stream):
                barrier.wait()
                for _ in range(20):
                    out = results(tvn.ops, *data[d])
                    stream.synchronize()
                    assert_same(out, refs[d])
        except Exception as e:  # reported by the main thread
            errors.append((d, repr(e)))

    threads = [threading.Thread(target=drive, args=(d,)) for d in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
