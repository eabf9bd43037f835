"""The tvops:: torch custom ops: schemas, fake kernels and autograd registrations
(torch.library.opcheck), gradients through the ops against torchvision's and finite
differences, errors, CUDA streams and allocator, and the eager fallback without them."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torchvision

import torchvision_native as tvn
from cuda_graphs import assert_graph_replay_matches_eager
from torchvision_native._torch import table
from boxes import feature_map, random_boxes, random_rois

tvops = torch.ops.tvops


def test_every_op_is_registered():
    assert tvn._torch.registered
    for name in table.SCHEMAS:
        op = getattr(tvops, name).default
        assert str(op._schema) == "tvops::" + table.SCHEMAS[name].replace("1e-07", "9.9999999999999995e-08")


def _roi_inputs(dtype=torch.float64, c=4, requires_grad=True):
    x = feature_map(2, c, 9, 11, dtype=dtype).requires_grad_(requires_grad)
    rois = torch.tensor([[0, 1.0, 1.5, 20.0, 30.0], [1, 0.5, 0.5, 3.0, 2.0], [0, 10.0, 5.0, 40.0, 36.0]], dtype=dtype)
    return x, rois


def _cases():
    """(op name, args) for opcheck: float32 inputs the kernels and fake kernels both see."""
    boxes, scores = random_boxes(40, seed=3)
    idxs = torch.randint(0, 4, (40,), generator=torch.Generator().manual_seed(1))
    x, rois = _roi_inputs(torch.float32)
    ps_x = feature_map(2, 2 * 3 * 3, 9, 11).requires_grad_()
    features = [feature_map(2, 4, 16, 20).requires_grad_(), feature_map(2, 4, 8, 10, seed=1).requires_grad_()]
    levels = torch.tensor([0, 1, 1])
    grad = torch.randn(3, 4, 3, 2)
    d_input = feature_map(2, 4, 9, 11).requires_grad_()
    d_weight = feature_map(6, 2, 3, 3, seed=2).requires_grad_()  # groups = 2
    d_offset = (feature_map(2, 2 * 2 * 9, 9, 11, seed=3) * 2).requires_grad_()  # offset_groups = 2, padding 1
    d_mask = torch.rand(2, 2 * 9, 9, 11, generator=torch.Generator().manual_seed(4)).requires_grad_()
    d_bias = torch.randn(6).requires_grad_()
    return [
        ("deform_conv2d", (d_input, d_weight, d_offset, d_mask, d_bias, 1, 1, 1, 1, 1, 1, 2, 2, True)),
        ("deform_conv2d", (d_input, d_weight, d_offset, torch.zeros(2, 0), d_bias, 1, 1, 1, 1, 1, 1, 2, 2, False)),
        ("nms", (boxes, scores, 0.5)),
        ("batched_nms", (boxes, scores, idxs, 0.5)),
        ("box_convert", (boxes, "xyxy", "cxcywh")),
        ("box_convert", (boxes.to(torch.int32), "xyxy", "cxcywh")),
        ("box_area", (boxes.to(torch.float16),)),
        ("box_area", (boxes.to(torch.int16), "xywh")),
        ("clip_boxes_to_image", (boxes.view(2, 20, 4), 600, 700)),
        ("remove_small_boxes", (boxes, 100.0)),
        ("box_iou", (boxes, boxes[:7])),
        ("generalized_box_iou", (boxes.double(), boxes[:7].double())),
        ("distance_box_iou", (boxes, boxes[:7], 1e-6)),
        ("complete_box_iou", (boxes.view(2, 20, 4), boxes.view(2, 20, 4)[:, :5])),
        ("roi_align", (x, rois, 0.25, 3, 2, 2, True)),
        ("roi_align", (x, rois, 0.25, 3, 2, -1, False)),
        ("_roi_align_backward", (grad, rois, 0.25, 3, 2, 2, 4, 9, 11, 2, True)),
        ("roi_pool", (x, rois, 0.25, 3, 2)),
        ("ps_roi_align", (ps_x, rois, 0.25, 3, 3, 2)),
        ("ps_roi_pool", (ps_x, rois, 0.25, 3, 3)),
        ("multi_scale_roi_align", (features, [0.25, 0.125], rois, levels, 3, 2, 2, False)),
    ]


@pytest.mark.parametrize("name,args", _cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_opcheck(name, args):
    # Schema, fake kernel against the real one, autograd registration, AOT dispatch.
    torch.library.opcheck(getattr(tvops, name).default, args)


@pytest.mark.parametrize("aligned", (True, False))
def test_gradcheck_roi_align(aligned):
    x, rois = _roi_inputs()
    assert torch.autograd.gradcheck(lambda t: tvops.roi_align(t, rois, 0.25, 3, 2, 1, aligned), (x,))


def test_gradcheck_roi_pool_and_position_sensitive_ops():
    x, rois = _roi_inputs()
    assert torch.autograd.gradcheck(lambda t: tvops.roi_pool(t, rois, 0.25, 3, 2)[0], (x,))
    ps_x, _ = _roi_inputs(c=2 * 3 * 2)
    assert torch.autograd.gradcheck(lambda t: tvops.ps_roi_align(t, rois, 0.25, 3, 2, 1)[0], (ps_x,))
    # ps_roi_pool's backward is not the adjoint of its forward at the last row and column
    # (torchvision's quirk, OPS.md 8): RoIs that stay clear of them.
    inner = torch.tensor([[0, 2.0, 3.0, 20.0, 24.0], [1, 4.0, 4.0, 30.0, 18.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: tvops.ps_roi_pool(t, inner, 0.25, 3, 2)[0], (ps_x,))


def test_gradcheck_multi_scale_roi_align():
    features = [feature_map(2, 3, 16, 20, dtype=torch.float64).requires_grad_(),
                feature_map(2, 3, 8, 10, seed=1, dtype=torch.float64).requires_grad_()]
    rois = random_rois(6, dtype=torch.float64)
    levels = torch.tensor([0, 1, 1, 0, 1, 0])
    assert torch.autograd.gradcheck(
        lambda a, b: tvops.multi_scale_roi_align([a, b], [0.25, 0.125], rois, levels, 3, 2, 1, False), features)


@pytest.mark.parametrize("use_mask", (True, False))
def test_gradcheck_deform_conv2d(use_mask):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 2, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    offset = torch.randn(1, 2 * 2 * 6, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(1, 2 * 6, 5, 5, generator=g, dtype=torch.float64, requires_grad=use_mask)
    bias = torch.randn(2, generator=g, dtype=torch.float64, requires_grad=True)

    def conv(x, weight, offset, mask, bias):
        return tvops.deform_conv2d(x, weight, offset, mask if use_mask else torch.zeros(1, 0, dtype=x.dtype), bias,
                                   1, 1, 1, 0, 1, 1, 2, 2, use_mask)

    assert torch.autograd.gradcheck(conv, (x, weight, offset, mask, bias))


@pytest.mark.parametrize("op", ("roi_align", "roi_pool", "ps_roi_align", "ps_roi_pool"))
def test_gradients_equal_torchvision(op):
    c = 2 * 7 * 7 if op.startswith("ps_") else 13
    x, rois = feature_map(c=c), random_rois(60)
    extra = (2,) if op.endswith("align") else ()
    grads = []
    for fn in (getattr(torchvision.ops, op), getattr(tvn.ops, op)):
        xr = x.clone().requires_grad_()
        out = fn(xr, rois, 7, 0.25, *extra)
        out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        grads.append(xr.grad)
    assert torch.equal(grads[1], grads[0])


def test_double_backward_raises():
    x, rois = _roi_inputs()
    out = tvops.roi_align(x, rois, 0.25, 3, 2, 1, True)
    g = torch.ones_like(out, requires_grad=True)  # a grad that needs a gradient itself
    (gx,) = torch.autograd.grad(out, x, g, create_graph=True)
    with pytest.raises(RuntimeError, match="double backwards on roi_align not supported"):
        gx.sum().backward()


def _eager_cases():
    """(name, call(module)) pairs: each call runs an op with gradients through torchvision_native.ops
    (eager: the dispatcher shortcut) or through the custom op itself, and returns outputs and grads."""
    x, rois = feature_map(c=2 * 3 * 3), random_rois(40)

    def roi(op, *extra):
        def call(direct):
            xr = x.clone().requires_grad_()
            if direct:
                out = getattr(tvops, op)(xr, rois, 0.25, 3, 3, *extra)
                out = out[0] if isinstance(out, (tuple, list)) else out
            else:
                out = getattr(tvn.ops, op)(xr, rois, 3, 0.25, *extra)
            out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
            return out, xr.grad
        return call

    def deform(direct):
        g = torch.Generator().manual_seed(3)
        t = [torch.randn(*shape, generator=g).requires_grad_() for shape in
             ((2, 4, 7, 7), (6, 4, 3, 3), (2, 18, 7, 7), (2, 9, 7, 7), (6,))]
        x, w, offset, mask, bias = t
        if direct:
            out = tvops.deform_conv2d(x, w, offset, mask, bias, 1, 1, 1, 1, 1, 1, 1, 1, True)
        else:
            out = tvn.ops.deform_conv2d(x, offset, w, bias, padding=1, mask=mask)
        out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        return [out] + [a.grad for a in t]

    return [("roi_align", roi("roi_align", 2, True)), ("roi_pool", roi("roi_pool")),
            ("ps_roi_align", roi("ps_roi_align", 2)), ("ps_roi_pool", roi("ps_roi_pool")), ("deform_conv2d", deform)]


@pytest.mark.parametrize("name, call", _eager_cases(), ids=[n for n, _ in _eager_cases()])
def test_eager_shortcut_matches_the_custom_ops(name, call):
    # Plain eager calls skip the dispatcher (torchvision_native._torch.eager): the same
    # outputs and gradients as the registered ops.
    for ours, op in zip(call(False), call(True)):
        assert torch.equal(ours, op), name


def test_dispatch_modes_and_jit_traces_still_see_the_ops():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func))
            return func(*args, **(kwargs or {}))

    x, rois = _roi_inputs()
    with Record() as mode:
        out = tvn.ops.roi_align(x, rois, 3, 0.25, 2, True)
        out.sum().backward()
        tvn.ops.nms(rois[:, 1:], rois[:, 0], 0.5)
    assert {"tvops.roi_align.default", "tvops._roi_align_backward.default", "tvops.nms.default"} <= set(mode.names)

    traced = torch.jit.trace(lambda x: tvn.ops.roi_align(x, rois, 3, 0.25, 2, True), (x.detach(),))
    assert "tvops::roi_align" in str(traced.graph)


def test_eager_shortcut_takes_module_parameters_and_leaves_subclasses_to_the_ops():
    from torchvision_native._torch import eager

    x, rois = _roi_inputs()
    assert eager.plain_eager([x, torch.nn.Parameter(rois)])
    assert not eager.plain_eager([])

    class Sub(torch.Tensor):  # a subclass may override ops: the custom op must see it
        pass

    assert not eager.plain_eager([x, rois.as_subclass(Sub)])
    conv = tvn.ops.DeformConv2d(4, 6, 3, padding=1).double()
    offset = torch.zeros(2, 18, 9, 11, dtype=torch.float64)
    out = conv(x, offset)
    assert out.grad_fn is not None and "eager" in type(out.grad_fn).__name__
    out.sum().backward()
    assert conv.weight.grad is not None and x.grad is not None


def test_double_backward_through_the_eager_shortcut_raises():
    x, rois = _roi_inputs()
    out = tvn.ops.roi_align(x, rois, (3, 2), 0.25, 1, True)
    g = torch.ones_like(out, requires_grad=True)
    (gx,) = torch.autograd.grad(out, x, g, create_graph=True)
    with pytest.raises(RuntimeError, match="double backwards on roi_align not supported"):
        gx.sum().backward()


def test_boxes_get_no_gradient():
    x, rois = _roi_inputs()
    rois.requires_grad_()
    tvops.roi_align(x, rois, 0.25, 3, 2, 1, True).sum().backward()
    assert x.grad is not None and rois.grad is None


def test_bad_input_raises_clear_errors():
    x, rois = _roi_inputs(torch.float32, requires_grad=False)
    with pytest.raises(ValueError, match="rois"):
        tvops.roi_align(x, rois[:, :4], 0.25, 3, 2, 2, True)
    with pytest.raises(TypeError):
        tvops.roi_align(x, rois.double(), 0.25, 3, 2, 2, True)
    with pytest.raises(ValueError, match="4"):
        tvops.nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="multiple of pooling height"):
        tvops.ps_roi_align(x, rois, 0.25, 3, 3, 2)
    with pytest.raises(ValueError, match="box format"):
        tvops.box_convert(torch.zeros(2, 4), "xyxy", "yxyx")
    with pytest.raises(AssertionError, match="Tensor\\[K, 5\\]"):
        tvn.ops.roi_align(x, rois[:, :4], 3)
    # The fake kernels refuse the same shapes while tracing.
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(), pytest.raises(RuntimeError, match="rois must have shape as Tensor\\[K, 5\\]"):
        tvops.roi_align(torch.empty(2, 4, 9, 11), torch.empty(3, 4), 0.25, 3, 2, 2, True)


def test_numpy_still_gives_numpy():
    import numpy as np

    boxes, scores = random_boxes(30)
    keep = tvn.ops.nms(boxes.numpy(), scores.numpy(), 0.5)
    assert isinstance(keep, np.ndarray) and keep.tolist() == torchvision.ops.nms(boxes, scores, 0.5).tolist()


def test_eager_fallback_without_custom_ops():
    """TORCHVISION_NATIVE_CUSTOM_OPS=0 (as on torch < 2.4): plain calls, same results and gradients."""
    code = textwrap.dedent("""
        import torch, torchvision
        import torchvision_native as tvn
        assert not tvn._torch.registered and not hasattr(torch.ops.tvops, "nms")
        g = torch.Generator().manual_seed(0)
        boxes = torch.rand(50, 4, generator=g) * 100
        boxes[:, 2:] += boxes[:, :2]
        scores = torch.rand(50, generator=g)
        assert torch.equal(tvn.ops.nms(boxes, scores, 0.5), torchvision.ops.nms(boxes, scores, 0.5))
        x = torch.randn(2, 5, 12, 12, generator=g, dtype=torch.float64)
        rois = torch.tensor([[0, 1, 1, 30, 40], [1, 5, 2, 20, 20.]], dtype=torch.float64)
        grads = []
        for fn in (torchvision.ops.roi_align, tvn.ops.roi_align):
            xr = x.clone().requires_grad_()
            fn(xr, rois, 3, 0.25, 2, True).sum().backward()
            grads.append(xr.grad)
        assert torch.equal(grads[0], grads[1])
        print("ok")
    """)
    env = dict(os.environ, TORCHVISION_NATIVE_CUSTOM_OPS="0", PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr


# ---- CUDA: torch's current stream and caching allocator ----

@pytest.mark.cuda
def test_cuda_outputs_come_from_torchs_caching_allocator():
    x = feature_map(2, 64, 50, 60).cuda()
    rois = random_rois(500).cuda()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    out = tvops.roi_align(x, rois, 0.25, 7, 7, 2, True)
    grown = torch.cuda.memory_allocated() - before
    assert grown >= out.numel() * out.element_size()
    del out
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == before


@pytest.mark.cuda
def test_cuda_ops_on_a_side_stream_match_torchvision():
    boxes, scores = random_boxes(3000)
    x, rois = feature_map(c=32), random_rois(400)
    ref_keep = torchvision.ops.nms(boxes.cuda(), scores.cuda(), 0.5)
    ref = torchvision.ops.roi_align(x.cuda(), rois.cuda(), 7, 0.25, 2, True)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        b, s, xc, rc = boxes.cuda(), scores.cuda(), x.cuda().requires_grad_(), rois.cuda()
        keep = tvn.ops.nms(b, s, 0.5)
        out = tvn.ops.roi_align(xc, rc, 7, 0.25, 2, True)
        out.sum().backward()
    torch.cuda.current_stream().wait_stream(side)
    assert torch.equal(keep, ref_keep)
    assert torch.allclose(out, ref, atol=1e-5)
    xr = x.cuda().requires_grad_()
    torchvision.ops.roi_align(xr, rois.cuda(), 7, 0.25, 2, True).sum().backward()
    assert torch.allclose(xc.grad, xr.grad, atol=1e-4)


@pytest.mark.cuda
def test_cuda_opcheck():
    boxes, scores = random_boxes(200)
    x, rois = _roi_inputs(torch.float32)
    torch.library.opcheck(tvops.nms.default, (boxes.cuda(), scores.cuda(), 0.5))
    torch.library.opcheck(tvops.roi_align.default, (x.detach().cuda().requires_grad_(), rois.cuda(), 0.25, 3, 2, 2,
                                                    True))


@pytest.mark.cuda
def test_cuda_graph_capture_through_the_custom_ops():
    # Outputs come from torch's caching allocator, which serves graph capture from the
    # graph's private pool; the kernels don't synchronise the host.
    x, rois = feature_map(c=16).cuda(), random_rois(64).cuda()
    offset = torch.randn(2, 18, 23, 31, device="cuda")
    weight = torch.randn(8, 16, 3, 3, device="cuda")

    def step():
        return (tvn.ops.roi_align(x, rois, 7, 0.25, 2, True),
                tvn.ops.deform_conv2d(x, offset, weight, padding=(1, 1)))

    assert_graph_replay_matches_eager(step)
