"""patch_torchvision(): torchvision's detection models, ops and image functions on tvops
kernels give torchvision's own results, and unpatch brings torchvision's kernels back.
Models are built with random weights (no downloads)."""
import io as pyio

import pytest
import torch
import torchvision
from torchvision.models import detection

import torchvision_native as tvn
from boxes import feature_map, random_boxes, random_rois

# torchvision 0.29 deprecates its image functions (in favour of TorchCodec); they still work.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")


@pytest.fixture(autouse=True)
def unpatched():
    tvn.unpatch_torchvision()
    yield
    tvn.unpatch_torchvision()


def _model(builder, **kwargs):
    torch.manual_seed(0)
    return builder(weights=None, weights_backbone=None, **kwargs).eval()


def _images():
    g = torch.Generator().manual_seed(1)
    return [torch.rand(3, 320, 416, generator=g), torch.rand(3, 288, 352, generator=g)]


MODELS = {
    "fasterrcnn_resnet50_fpn": (detection.fasterrcnn_resnet50_fpn, {}),
    "maskrcnn_resnet50_fpn": (detection.maskrcnn_resnet50_fpn, {}),
    # Random heads score every anchor near the 0.01 prior: a lower threshold keeps detections.
    "retinanet_resnet50_fpn": (detection.retinanet_resnet50_fpn, {"score_thresh": 0.005}),
}


@pytest.mark.parametrize("name", MODELS)
def test_detection_models_give_torchvisions_detections(name):
    builder, kwargs = MODELS[name]
    model = _model(builder, **kwargs)
    images = _images()
    with torch.inference_mode():
        reference = model(images)
        with tvn.patched_torchvision():
            assert tvn.is_torchvision_patched()
            patched = model(images)
        again = model(images)
    assert not tvn.is_torchvision_patched()
    for ref, out, unp in zip(reference, patched, again):
        assert ref.keys() == out.keys()
        assert len(ref["boxes"]) > 0, "the model found nothing: the comparison would be empty"
        for key in ref:
            assert torch.equal(out[key], ref[key]), key
            assert torch.equal(unp[key], ref[key]), key


def test_the_patched_ops_run_tvops_kernels(monkeypatch):
    x, rois = feature_map(c=8), random_rois(30)
    boxes, scores = random_boxes(500)
    image = torchvision.io.encode_png((torch.rand(3, 8, 8) * 255).to(torch.uint8))
    calls = []
    weight, offset = torch.randn(3, 8, 3, 3), torch.randn(2, 18, 21, 29)
    for name in ("roi_align", "roi_align_backward", "nms", "batched_nms", "decode_png", "deform_conv2d"):
        native = getattr(tvn._C, name)
        monkeypatch.setattr(tvn._C, name, lambda *a, _n=name, _f=native, **k: calls.append(_n) or _f(*a, **k))

    def run():
        xr = x.clone().requires_grad_()
        torchvision.ops.roi_align(xr, rois, 7, 0.25, 2, True).sum().backward()
        torchvision.ops.nms(boxes, scores, 0.5)
        torchvision.ops.batched_nms(boxes, scores, (scores * 10).long(), 0.5)
        torchvision.io.decode_png(image)
        torchvision.ops.deform_conv2d(x, offset, weight)

    run()
    assert calls == []
    with tvn.patched_torchvision():
        run()
    assert calls == ["roi_align", "roi_align_backward", "nms", "batched_nms", "decode_png", "deform_conv2d"]
    run()
    assert len(calls) == 6


def test_patched_ops_match_and_differentiate_like_torchvision():
    x, rois = feature_map(c=2 * 3 * 3), random_rois(50)
    boxes, scores = random_boxes(3000)
    idxs = torch.randint(0, 20, (3000,), generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(3)
    weight, bias = torch.randn(5, x.shape[1], 3, 3, generator=g), torch.randn(5, generator=g)
    offset = torch.randn(x.shape[0], 18, x.shape[2], x.shape[3], generator=g)
    mask = torch.rand(x.shape[0], 9, x.shape[2], x.shape[3], generator=g)
    calls = {
        "nms": lambda t: torchvision.ops.nms(boxes, scores, 0.6),
        "batched_nms": lambda t: torchvision.ops.batched_nms(boxes, scores, idxs, 0.6),
        "roi_align": lambda t: torchvision.ops.roi_align(t, rois, 3, 0.25, -1, False),
        "roi_pool": lambda t: torchvision.ops.roi_pool(t, rois, 3, 0.25),
        "ps_roi_align": lambda t: torchvision.ops.ps_roi_align(t, rois, 3, 0.25, 2),
        "ps_roi_pool": lambda t: torchvision.ops.ps_roi_pool(t, rois, 3, 0.25),
        "box_iou": lambda t: torchvision.ops.box_iou(boxes[:50], boxes[50:90]),
        "clip": lambda t: torchvision.ops.clip_boxes_to_image(boxes, (500, 600)),
        "small": lambda t: torchvision.ops.remove_small_boxes(boxes, 80.0),
        "area": lambda t: torchvision.ops.box_area(boxes),
        "deform_conv2d": lambda t: torchvision.ops.deform_conv2d(t, offset, weight, padding=(1, 1), mask=mask),
        "deform_conv2d_v1": lambda t: torchvision.ops.deform_conv2d(t, offset, weight, bias, padding=(1, 1)),
    }

    def run():
        results = {}
        for name, call in calls.items():
            xr = x.clone().requires_grad_()
            out = call(xr)
            if out.requires_grad:
                out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
            results[name] = (out.detach(), xr.grad)
        return results

    reference = run()
    with tvn.patched_torchvision():
        patched = run()
    for name, (out, grad) in reference.items():
        # tvops' deform_conv2d sums in another order (an implicit GEMM): float32 rounding apart.
        tolerance = 1e-4 if name.startswith("deform") else 1e-6
        assert torch.allclose(patched[name][0], out, rtol=tolerance, atol=tolerance), name
        if out.dtype == torch.int64 or name.startswith(("roi", "ps_")):
            assert torch.equal(patched[name][0], out), name  # indices and RoI features: exactly
        assert (grad is None) == (patched[name][1] is None), name
        if grad is not None:
            assert torch.allclose(patched[name][1], grad, rtol=tolerance, atol=tolerance), name
            if not name.startswith("deform"):
                assert torch.equal(patched[name][1], grad), name


def _pyramid_inputs(dtype=torch.float32):
    g = torch.Generator().manual_seed(6)
    sizes = [(64, 80), (32, 40), (16, 20), (8, 10)]
    feats = {str(i): torch.randn(2, 8, h, w, generator=g, dtype=torch.float64).to(dtype)
             for i, (h, w) in enumerate(sizes)}
    boxes = []
    for n in (60, 35):
        xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 200
        wh = torch.rand(n, 2, generator=g, dtype=torch.float64) ** 2 * 250 + 2  # sizes over every level
        boxes.append(torch.cat([xy, xy + wh], 1).to(dtype))
    return feats, boxes, [(256, 320), (240, 300)]


def test_patched_multiscale_pooling_is_one_tvops_call(monkeypatch):
    feats, boxes, shapes = _pyramid_inputs()
    pooler = torchvision.ops.MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)
    calls = []
    for name in ("roi_align", "multi_scale_roi_align"):
        native = getattr(tvn._C, name)
        monkeypatch.setattr(tvn._C, name, lambda *a, _n=name, _f=native, **k: calls.append(_n) or _f(*a, **k))

    def run(features):
        leaves = {k: v.clone().requires_grad_() for k, v in features.items()}
        out = pooler(leaves, boxes, shapes)
        out.backward(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out))
        return out.detach(), [leaves[k].grad for k in sorted(leaves)]

    reference, ref_grads = run(feats)
    levels = pooler.map_levels(boxes).bincount(minlength=4)
    assert (levels > 0).sum() >= 3, levels  # the boxes spread over the pyramid
    calls.clear()
    with tvn.patched_torchvision():
        out, grads = run(feats)
        assert calls == ["multi_scale_roi_align"]  # one fused call, no roi_align a level
        with torch.inference_mode():
            assert torch.equal(pooler(feats, boxes, shapes), reference)
        # One level: torchvision's own function (a roi_align call).
        calls.clear()
        single = torchvision.ops.MultiScaleRoIAlign(["1"], 5, 2)
        single_out = single(feats, boxes, shapes)
        assert calls == ["roi_align"]
    assert torch.equal(out, reference)  # bit for bit on the CPU, forward and backward
    for got, want in zip(grads, ref_grads):
        assert torch.equal(got, want)
    assert torch.equal(single_out, torchvision.ops.MultiScaleRoIAlign(["1"], 5, 2)(feats, boxes, shapes))


def test_patched_multiscale_pooling_scripted_and_its_fallbacks(monkeypatch):
    feats, boxes, shapes = _pyramid_inputs()
    names = ["0", "1", "2", "3"]
    reference = torchvision.ops.MultiScaleRoIAlign(names, 7, 2)(feats, boxes, shapes)
    calls = []
    for name in ("roi_align", "multi_scale_roi_align"):
        native = getattr(tvn._C, name)
        monkeypatch.setattr(tvn._C, name, lambda *a, _n=name, _f=native, **k: calls.append(_n) or _f(*a, **k))
    with tvn.patched_torchvision(), torch.no_grad():
        # TorchScript compiles the replacement: the fused op runs there too.
        scripted = torch.jit.script(torchvision.ops.MultiScaleRoIAlign(names, 7, 2))
        assert torch.equal(scripted(feats, boxes, shapes), reference)
        assert calls == ["multi_scale_roi_align"]
        # Under autocast torchvision's roi_align casts maps and boxes to float32 (the fused
        # op does not): torchvision's own loop runs, on tvops' roi_align.
        calls.clear()
        half = {k: v.bfloat16() for k, v in feats.items()}
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast_out = torchvision.ops.MultiScaleRoIAlign(names, 7, 2)(half, boxes, shapes)
        assert calls == ["roi_align"] * 4
        # More levels than the CUDA kernels take: torchvision's loop as well.
        calls.clear()
        many = {str(i): feats[str(min(i, 3))][..., : 64 >> min(i, 3)] for i in range(9)}
        many_names = [str(i) for i in range(9)]
        many_out = torchvision.ops.MultiScaleRoIAlign(many_names, 3, 2)(many, boxes, shapes)
        assert calls == ["roi_align"] * 9
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(autocast_out, torchvision.ops.MultiScaleRoIAlign(names, 7, 2)(half, boxes, shapes))
    with torch.no_grad():
        assert torch.equal(many_out, torchvision.ops.MultiScaleRoIAlign(many_names, 3, 2)(many, boxes, shapes))


def test_box_functions_fall_back_where_tvops_cannot():
    boxes = random_boxes(40)[0].requires_grad_()
    with tvn.patched_torchvision():
        # Gradients: torchvision's own differentiable formula runs.
        torchvision.ops.box_iou(boxes, boxes).sum().backward()
        area = torchvision.ops.box_area(boxes, fmt="xywh")
    assert boxes.grad is not None and area.grad_fn is not None


def test_patched_image_functions_decode_like_torchvision(tmp_path):
    g = torch.Generator().manual_seed(0)
    image = (torch.rand(3, 64, 80, generator=g) * 255).to(torch.uint8)
    jpeg = torchvision.io.encode_jpeg(image, quality=90)
    png = torchvision.io.encode_png(image)
    reference = [torchvision.io.decode_jpeg(jpeg), torchvision.io.decode_png(png), torchvision.io.decode_image(jpeg),
                 torchvision.io.decode_image(png, mode=torchvision.io.ImageReadMode.GRAY), jpeg, png]
    with tvn.patched_torchvision():
        ours = [torchvision.io.decode_jpeg(jpeg), torchvision.io.decode_png(png), torchvision.io.decode_image(jpeg),
                torchvision.io.decode_image(png, mode=torchvision.io.ImageReadMode.GRAY),
                torchvision.io.encode_jpeg(image, quality=90), torchvision.io.encode_png(image)]
        assert ours[0].is_contiguous()  # tvops decodes straight to CHW
        with pytest.raises(RuntimeError):
            torchvision.io.decode_jpeg(torch.tensor([0xFF, 0xD8, 0xFF, 0, 1, 2], dtype=torch.uint8))
    for ref, out in zip(reference, ours):
        assert torch.equal(out, ref)


def test_patch_is_idempotent_and_undone():
    x, rois = feature_map(c=4), random_rois(10)
    before = torch._C._dispatch_dump("torchvision::roi_align")
    tvn.patch_torchvision()
    tvn.patch_torchvision()
    assert "patch.py" in torch._C._dispatch_dump("torchvision::roi_align") or \
        "kernels.py" in torch._C._dispatch_dump("torchvision::roi_align")
    assert torchvision.ops.boxes.batched_nms is tvn.patch.batched_nms
    tvn.unpatch_torchvision()
    assert torch._C._dispatch_dump("torchvision::roi_align") == before
    assert torchvision.ops.boxes.batched_nms is not tvn.patch.batched_nms
    assert torchvision.ops.batched_nms is torchvision.ops.boxes.batched_nms
    torchvision.ops.roi_align(x, rois, 3)  # torchvision's kernels again, patch after patch
    tvn.patch_torchvision()
    tvn.unpatch_torchvision()


def test_scripted_model_after_patch():
    # TorchScript resolves the replacements like torchvision's own functions.
    model = _model(detection.fasterrcnn_resnet50_fpn, min_size=256, max_size=320)
    images = [_images()[0]]
    with torch.no_grad():
        reference = model(images)
        with tvn.patched_torchvision():
            scripted = torch.jit.script(model)
            _, out = scripted(images)
    for key in reference[0]:
        assert torch.equal(out[0][key], reference[0][key]), key


def test_modules_match_torchvision_modules():
    x, rois = feature_map(c=2 * 4 * 4), random_rois(25)
    pairs = [
        (tvn.ops.RoIAlign((4, 4), 0.25, 2, aligned=True), torchvision.ops.RoIAlign((4, 4), 0.25, 2, aligned=True)),
        (tvn.ops.RoIPool(4, 0.25), torchvision.ops.RoIPool(4, 0.25)),
        (tvn.ops.PSRoIAlign(4, 0.25, 2), torchvision.ops.PSRoIAlign(4, 0.25, 2)),
        (tvn.ops.PSRoIPool(4, 0.25), torchvision.ops.PSRoIPool(4, 0.25)),
    ]
    pairs.append((tvn.ops.DeformConv2d(4, 6, 3, padding=1, groups=2), torchvision.ops.DeformConv2d(4, 6, 3, padding=1,
                                                                                                  groups=2)))
    offset = torch.randn(2, 18, 23, 31, generator=torch.Generator().manual_seed(5))
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        assert ours.state_dict().keys() == theirs.state_dict().keys()
        ours.load_state_dict(theirs.state_dict())
        buffer = pyio.BytesIO()
        torch.save(theirs.state_dict(), buffer)
        buffer.seek(0)
        ours.load_state_dict(torch.load(buffer))
        if isinstance(ours, tvn.ops.DeformConv2d):
            y = x[:, :4]
            torch.testing.assert_close(ours(y, offset), theirs(y, offset), rtol=1e-5, atol=1e-5)
        else:
            assert torch.equal(ours(x, rois), theirs(x, rois)), type(ours).__name__
