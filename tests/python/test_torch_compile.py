"""torch.compile(fullgraph=True) and torch.export through the tvops:: custom ops (a
small detector with deform_conv2d, nms, roi_align and roi_pool): no graph breaks, the
same outputs and gradients as eager torchvision, and an exported program that survives
torch.export.save / load."""
import pytest
import torch
import torchvision

import torchvision_native as tvn
from boxes import feature_map, random_boxes, random_rois


class Detector(torch.nn.Module):
    """A small detector head: conv features, nms of the proposals, then RoI pooling."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.offsets = torch.nn.Conv2d(3, 2 * 9, 3, padding=1)
        self.deform = tvn.ops.DeformConv2d(3, 8, 3, padding=1)
        self.pool = tvn.ops.RoIAlign((4, 4), spatial_scale=0.5, sampling_ratio=2, aligned=True)

    def forward(self, image, boxes, scores):
        features = torch.relu(self.conv(image) + self.deform(image, self.offsets(image)))
        keep = tvn.ops.nms(boxes, scores, 0.5)
        kept = boxes[keep]
        pooled = self.pool(features, [kept])
        maxed = tvn.ops.roi_pool(features, [kept], (2, 2), 0.5)
        return pooled.mean(dim=(1, 2, 3)) + maxed.amax(dim=(1, 2, 3)), keep


def _inputs(n=60, seed=0):
    boxes, scores = random_boxes(n, seed=seed, origin=100.0, max_size=40.0)
    image = torch.rand(1, 3, 80, 96, generator=torch.Generator().manual_seed(seed))
    return image, boxes, scores


def _reference(image, boxes, scores, model):
    """The same computation with torchvision's ops."""
    deformed = torchvision.ops.deform_conv2d(image, model.offsets(image), model.deform.weight, model.deform.bias,
                                             padding=(1, 1))
    features = torch.relu(model.conv(image) + deformed)
    keep = torchvision.ops.nms(boxes, scores, 0.5)
    kept = boxes[keep]
    pooled = torchvision.ops.roi_align(features, [kept], (4, 4), 0.5, 2, True)
    maxed = torchvision.ops.roi_pool(features, [kept], (2, 2), 0.5)
    return pooled.mean(dim=(1, 2, 3)) + maxed.amax(dim=(1, 2, 3)), keep


def test_compile_fullgraph_inductor_matches_torchvision():
    torch._dynamo.reset()
    model = Detector().eval()
    compiled = torch.compile(model, fullgraph=True)  # a graph break raises
    with torch.no_grad():
        for seed in (0, 1):
            args = _inputs(seed=seed)
            out, keep = compiled(*args)
            ref, ref_keep = _reference(*args, model)
            assert torch.equal(keep, ref_keep)
            assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)


def test_no_graph_breaks():
    # nms' output length depends on the data: fullgraph=True captures such ops, and so
    # does this setting without it (as for torchvision's nms).
    torch._dynamo.reset()
    with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True):
        explanation = torch._dynamo.explain(Detector())(*_inputs())
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, explanation.break_reasons


def test_compiled_backward_matches_torchvision():
    torch._dynamo.reset()
    x, rois = feature_map(c=6), random_rois(40)

    def loss(fn, t):
        return (fn(t, rois, (3, 3), 0.25, 2, True) ** 2).sum()

    compiled = torch.compile(lambda t: loss(tvn.ops.roi_align, t), fullgraph=True, backend="aot_eager")
    grads = []
    for fn in (compiled, lambda t: loss(torchvision.ops.roi_align, t)):
        xr = x.clone().requires_grad_()
        fn(xr).backward()
        grads.append(xr.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_compiled_deform_conv2d_training_step_matches_torchvision():
    torch._dynamo.reset()
    model = Detector()
    image = _inputs()[0]

    def step(deform):
        return deform(image, model.offsets(image)).square().mean()

    compiled = torch.compile(step, fullgraph=True)
    compiled(model.deform).backward()
    ours = [p.grad.clone() for p in (model.deform.weight, model.deform.bias, model.offsets.weight)]
    model.zero_grad()
    reference = torchvision.ops.DeformConv2d(3, 8, 3, padding=1)
    reference.load_state_dict(model.deform.state_dict())
    step(reference).backward()
    theirs = [p.grad for p in (reference.weight, reference.bias, model.offsets.weight)]
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_dynamic_shapes_without_recompiles():
    torch._dynamo.reset()
    counter = torch._dynamo.testing.CompileCounter()
    compiled = torch.compile(lambda b, s: tvn.ops.batched_nms(b, s, (s * 10).long() % 3, 0.4), fullgraph=True,
                             dynamic=True, backend=counter)
    for n in (50, 80, 130):
        boxes, scores = random_boxes(n, seed=n)
        ref = torchvision.ops.batched_nms(boxes, scores, (scores * 10).long() % 3, 0.4)
        assert torch.equal(compiled(boxes, scores), ref)
    assert counter.frame_count == 1


def test_multi_scale_roi_align_compiles():
    torch._dynamo.reset()
    pooler = tvn.ops.MultiScaleRoIAlign(["p2", "p3"], 5, 2)
    reference = torchvision.ops.MultiScaleRoIAlign(["p2", "p3"], 5, 2)
    features = {"p2": feature_map(2, 4, 40, 48), "p3": feature_map(2, 4, 20, 24, seed=1)}
    boxes = [random_rois(30, extent=150.0)[:, 1:], random_rois(20, extent=150.0, seed=2)[:, 1:]]
    shapes = [(160, 192), (160, 192)]
    pooler(features, boxes, shapes)  # the first call infers the scales (Python floats)
    out = torch.compile(pooler, fullgraph=True, backend="aot_eager")(features, boxes, shapes)
    assert torch.equal(out, reference(features, boxes, shapes))


def test_export_round_trip(tmp_path):
    model = Detector().eval()
    args = _inputs()
    program = torch.export.export(model, args)
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert {"tvops.nms.default", "tvops.roi_align.default", "tvops.roi_pool.default",
            "tvops.deform_conv2d.default"} <= targets, targets
    path = tmp_path / "detector.pt2"
    torch.export.save(program, path)
    loaded = torch.export.load(path).module()
    for seed in (0, 3):
        args = _inputs(seed=seed)
        out, keep = loaded(*args)
        ref, ref_keep = _reference(*args, model)
        assert torch.equal(keep, ref_keep)
        assert torch.allclose(out, ref, atol=1e-6)


def test_export_with_a_dynamic_number_of_boxes():
    n = torch.export.Dim("n", min=2, max=4096)
    program = torch.export.export(Detector().eval(), _inputs(), dynamic_shapes=(None, {0: n}, {0: n}))
    module = program.module()
    for count in (10, 200):
        args = _inputs(count, seed=count)
        assert torch.equal(module(*args)[1], torchvision.ops.nms(args[1], args[2], 0.5))


@pytest.mark.cuda
def test_compile_on_cuda(monkeypatch):
    # Exact float32 on both sides: tvops' deform_conv2d follows cudnn.allow_tf32 (TF32
    # by default), torchvision's CUDA kernel has no TF32 mode.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    torch._dynamo.reset()
    model = Detector().cuda().eval()
    args = [a.cuda() for a in _inputs()]
    with torch.no_grad():
        out, keep = torch.compile(model, fullgraph=True)(*args)
        ref, ref_keep = _reference(*args, model)
    assert torch.equal(keep, ref_keep)
    assert torch.allclose(out, ref, atol=1e-4)
