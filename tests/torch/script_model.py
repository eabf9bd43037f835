"""Writes the TorchScript file that tests/torch/run_scripted_model.cpp runs through
tvops_torch: a module calling torchvision.ops (nms, batched_nms, roi_align, roi_pool,
ps_roi_align, ps_roi_pool, MultiScaleRoIAlign), scripted here with torchvision, with
its inputs, torchvision's outputs and torchvision's input gradients as buffers. Also
deform_conv2d with and without a mask.

    python script_model.py OUT.pt
"""
import os
import sys
from typing import List, Tuple

import torch
import torchvision
from torch import Tensor


class TorchvisionOps(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.pooler = torchvision.ops.MultiScaleRoIAlign(["p2", "p3"], 5, 2)
        self.bias = torch.nn.Parameter(torch.linspace(-1, 1, 6))

    def forward(self, x: Tensor, ps_x: Tensor, rois: Tensor, boxes: Tensor, scores: Tensor, idxs: Tensor,
                p2: Tensor, p3: Tensor, pool_boxes: Tensor, offset: Tensor, weight: Tensor,
                mask: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        keep = torchvision.ops.nms(boxes, scores, 0.5)
        batched = torchvision.ops.batched_nms(boxes, scores, idxs, 0.5)
        aligned = torchvision.ops.roi_align(x, rois, [7, 7], 0.25, 2, True)
        pooled = torchvision.ops.roi_pool(x, rois, [3, 3], 0.25)
        ps_aligned = torchvision.ops.ps_roi_align(ps_x, rois, 3, 0.25, 2)
        ps_pooled = torchvision.ops.ps_roi_pool(ps_x, rois, 3, 0.25)
        image_boxes: List[Tensor] = [pool_boxes[:40], pool_boxes[40:]]
        shapes: List[Tuple[int, int]] = [(320, 384), (320, 384)]
        levels = self.pooler({"p2": p2, "p3": p3}, image_boxes, shapes)
        deformed = torchvision.ops.deform_conv2d(x, offset, weight, padding=(1, 1), mask=mask)
        deformed_v1 = torchvision.ops.deform_conv2d(x, offset, weight, self.bias, padding=(1, 1))
        return keep, batched, aligned, pooled, ps_aligned, ps_pooled, levels, deformed, deformed_v1


GRADS = ("x", "ps_x", "p2", "p3", "offset", "weight", "mask")


def loss(outputs):
    """The scalar whose input gradients the C++ test compares (same formula there)."""
    _, _, aligned, pooled, ps_aligned, ps_pooled, levels, deformed, deformed_v1 = outputs
    return ((aligned * aligned).sum() + pooled.sum() + ps_aligned.sum() + (ps_pooled * 3).sum() + levels.sum()
            + (deformed * deformed).mean() + deformed_v1.mean())


def main(path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(300, 2, generator=g) * 1000
    boxes = torch.cat([xy, xy + 4 + torch.rand(300, 2, generator=g) * 200], 1)
    inputs = {
        "x": torch.randn(2, 16, 40, 48, generator=g),
        "ps_x": torch.randn(2, 2 * 9, 40, 48, generator=g),
        "rois": torch.cat([torch.randint(0, 2, (50, 1), generator=g).float(), boxes[:50] / 6.0], 1),
        "boxes": boxes,
        "scores": torch.rand(300, generator=g),
        "idxs": torch.randint(0, 5, (300,), generator=g),
        "p2": torch.randn(2, 8, 80, 96, generator=g),
        "p3": torch.randn(2, 8, 40, 48, generator=g),
        # Sides of 16 to 250 pixels in a 320 x 384 image: FPN levels 2 and 3 (p2 and p3).
        "pool_boxes": torch.cat([xy[:70] / 5, xy[:70] / 5 + 16 + torch.rand(70, 2, generator=g) * 234], 1),
        # deform_conv2d of x: 3 x 3 taps, 2 offset groups, 2 groups, padding 1
        "offset": torch.randn(2, 2 * 2 * 9, 40, 48, generator=g) * 2,
        "weight": torch.randn(6, 8, 3, 3, generator=g) * 0.1,
        "mask": torch.rand(2, 2 * 9, 40, 48, generator=g),
    }
    module = TorchvisionOps()
    grad_inputs = {k: v.clone().requires_grad_() if k in GRADS else v for k, v in inputs.items()}
    outputs = TorchvisionOps()(*grad_inputs.values())
    loss(outputs).backward()
    for name, value in inputs.items():
        module.register_buffer(f"input_{name}", value)
    for i, value in enumerate(outputs):
        module.register_buffer(f"expected_{i}", value.detach())
    for name in GRADS:
        module.register_buffer(f"expected_grad_{name}", grad_inputs[name].grad)
    torch.jit.save(torch.jit.script(module), path)


if __name__ == "__main__":
    main(sys.argv[1])
