"""The CUDA RoI family (roi_align, roi_pool, ps_roi_align, ps_roi_pool,
MultiScaleRoIAlign) against torchvision's CUDA ops: forward and backward, every
dtype, the deterministic backward, streams and bad inputs.

CUDA sums in a different order than torchvision's kernels (and the backward uses
atomics), so float results are compared with tolerances; float16/bfloat16 compute in
float32, so they must equal our own float32 result on the upcast input, rounded.
"""
import pytest
import torch
import torchvision

import torchvision_native as tvn
from boxes import feature_map, random_rois

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA device (torch.cuda.is_available() is False)")

DEV = "cuda"
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-12)}
# float32 atomics sum thousands of terms per pixel in any order (33x40 bins): absolute slack
GRAD_TOL = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.float64: dict(rtol=1e-10, atol=1e-12)}


class Op:
    """One op under test: how torchvision and tvops are called, and its channel count."""

    def __init__(self, name, output_size, extra=(), channels=13, scale=0.25):
        self.name, self.output_size, self.extra, self.channels, self.scale = name, output_size, extra, channels, scale

    def __call__(self, module, x, rois):
        return getattr(module.ops, self.name)(x, rois, self.output_size, self.scale, *self.extra)

    def __repr__(self):
        return f"{self.name}{self.output_size}{self.extra}"


OPS = [
    Op("roi_align", (7, 7), (2, True)),
    Op("roi_align", (7, 7), (2, False)),
    Op("roi_align", (3, 5), (-1, True)),
    Op("roi_align", (5, 4), (0, False), scale=0.125),
    Op("roi_align", (2, 2), (3, True), scale=1.0),
    Op("roi_align", (33, 40), (2, False)),  # too many bins to stage a block's outputs: the per-output kernel
    Op("roi_pool", (7, 7)),
    Op("roi_pool", (3, 5), scale=0.5),
    Op("roi_pool", (30, 40), scale=0.5),  # too many bins to stage: the per-output kernel
    Op("ps_roi_align", (3, 4), (2,), channels=24),
    Op("ps_roi_align", (3, 3), (-1,), channels=18, scale=0.5),
    Op("ps_roi_pool", (3, 4), channels=24),
    Op("ps_roi_pool", (2, 2), channels=8, scale=0.5),
]


def inputs(op, dtype, k=150, n=2, h=23, w=31, seed=0):
    x = feature_map(n, op.channels, h, w, seed=seed, dtype=dtype).to(DEV)
    rois = random_rois(k, n_images=n, dtype=dtype).to(DEV)
    return x, rois


def grad_of(module, op, x, rois, grad):
    xr = x.detach().clone().requires_grad_()
    op(module, xr, rois).backward(grad)
    return xr.grad


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
@pytest.mark.parametrize("op", OPS, ids=repr)
def test_forward_matches_torchvision(op, dtype):
    x, rois = inputs(op, dtype)
    ref = op(torchvision, x, rois)
    out = op(tvn, x, rois)
    assert out.device == x.device and out.dtype == dtype and out.shape == ref.shape
    torch.testing.assert_close(out, ref, **TOL[dtype], equal_nan=True)
    if op.name != "roi_align":  # the index output (argmax / channel mapping) must be identical
        _, ours = getattr(tvn._C, op.name)(*_native(x, rois, op))
        theirs = getattr(torch.ops.torchvision, op.name)(x, rois, op.scale, *op.output_size, *op.extra)[1]
        assert torch.equal(torch.from_dlpack(ours), theirs)


def _native(x, rois, op):
    from torchvision_native._convert import stream_for, to_native

    return (to_native(x, "input"), to_native(rois, "rois"), op.scale, *op.output_size, *op.extra, stream_for(x))


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
@pytest.mark.parametrize("op", OPS, ids=repr)
def test_backward_matches_torchvision(op, dtype):
    x, rois = inputs(op, dtype)
    out = op(torchvision, x, rois)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64).to(dtype).to(DEV)
    ref = grad_of(torchvision, op, x, rois, grad)
    ours = grad_of(tvn, op, x, rois, grad)
    assert ours.dtype == dtype and ours.shape == x.shape
    torch.testing.assert_close(ours, ref, **GRAD_TOL[dtype])


@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16))
@pytest.mark.parametrize("op", OPS, ids=repr)
def test_half_types_compute_in_float32(op, dtype):
    x, rois = inputs(op, dtype)
    out = op(tvn, x, rois)
    assert out.dtype == dtype
    # 16-bit loads, float32 arithmetic: exactly our float32 result on the upcast input, rounded
    # (ps_roi_align gives NaN for RoIs that float16 rounding made empty, as torchvision does).
    exact = dict(rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(out, op(tvn, x.float(), rois.float()).to(dtype), **exact)
    theirs32 = op(torchvision, x.float(), rois.float())
    if op.name.endswith("pool"):
        # one thread per output, summed in torchvision's order: identical to its float32
        torch.testing.assert_close(out, theirs32.to(dtype), **exact)
        return  # torchvision's float16 pooling computes the bin edges in float16: other bins
    torch.testing.assert_close(out.float(), theirs32, rtol=1e-2, atol=1e-2, equal_nan=True)
    if dtype == torch.float16:
        # torchvision computes the sample coordinates in float16 too, which moves samples
        # by up to ~1/64 pixel and across the map border now and then: most agree closely.
        close = torch.isclose(out, op(torchvision, x, rois), rtol=5e-2, atol=5e-2, equal_nan=True)
        assert close.float().mean() > 0.99


@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16))
@pytest.mark.parametrize("op", [OPS[0], OPS[6], OPS[9], OPS[11]], ids=repr)
def test_half_types_backward(op, dtype):
    x, rois = inputs(op, dtype)
    grad = torch.randn(op(tvn, x, rois).shape, generator=torch.Generator().manual_seed(3)).to(dtype).to(DEV)
    ours = grad_of(tvn, op, x, rois, grad)
    assert ours.dtype == dtype
    ref = grad_of(tvn, op, x.float(), rois.float(), grad.float())  # accumulated in float32 as well
    torch.testing.assert_close(ours.float(), ref, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("op", OPS, ids=repr)
def test_deterministic_backward_is_reproducible(op):
    x, rois = inputs(op, torch.float32, k=400)
    out = op(tvn, x, rois)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(4)).to(DEV)
    atomic = grad_of(tvn, op, x, rois, grad)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        first = grad_of(tvn, op, x, rois, grad)
        second = grad_of(tvn, op, x, rois, grad)
    finally:
        torch.use_deterministic_algorithms(previous)
    assert torch.equal(first, second)
    torch.testing.assert_close(first, atomic, **GRAD_TOL[torch.float32])
    torch.testing.assert_close(first, grad_of(torchvision, op, x, rois, grad), **GRAD_TOL[torch.float32])


@pytest.mark.parametrize("pooled,sr,aligned", [((7, 7), 2, True), ((16, 12), 3, False), ((1, 1), 1, True)])
def test_deterministic_backward_across_map_tiles(pooled, sr, aligned):
    """The deterministic backward sums by 32-pixel map tiles: maps of several tiles a side,
    RoIs across their borders and more RoIs than one pass over the footprints (2048),
    against torchvision in float64 and float32, with a strided output gradient; float16
    is our float32 result rounded; a NaN box and a bad batch index add nothing."""
    op = Op("roi_align", pooled, (sr, aligned), channels=19)
    x = feature_map(2, 19, 75, 90, seed=8, dtype=torch.float64).to(DEV)
    rois = random_rois(2500, extent=400.0, seed=9, dtype=torch.float64).to(DEV)
    shape = op(tvn, x, rois).shape
    grad = torch.randn(shape[0], shape[2], shape[1], shape[3], generator=torch.Generator().manual_seed(6),
                       dtype=torch.float64).to(DEV).transpose(1, 2)  # not contiguous
    torch.use_deterministic_algorithms(True)
    try:
        ours = {dt: grad_of(tvn, op, x.to(dt), rois.to(dt), grad.to(dt)) for dt in (torch.float64, torch.float32)}
        again = grad_of(tvn, op, x.float(), rois.float(), grad.float())
        half = grad_of(tvn, op, x.half(), rois.half(), grad.half())
        half_ref = grad_of(tvn, op, x.half().float(), rois.half().float(), grad.half().float())
    finally:
        torch.use_deterministic_algorithms(False)
    torch.testing.assert_close(ours[torch.float64], grad_of(torchvision, op, x, rois, grad), **GRAD_TOL[torch.float64])
    # a NaN box and a batch index past the images add nothing: torchvision without them
    bad = rois.clone()
    bad[5, 1] = float("nan")
    bad[7, 0] = 9
    torch.use_deterministic_algorithms(True)
    try:
        ours_bad = grad_of(tvn, op, x, bad, grad)
    finally:
        torch.use_deterministic_algorithms(False)
    keep = torch.ones(len(rois), dtype=torch.bool, device=DEV)
    keep[[5, 7]] = False
    torch.testing.assert_close(ours_bad, grad_of(torchvision, op, x, rois[keep], grad[keep]), **GRAD_TOL[torch.float64])
    torch.testing.assert_close(ours[torch.float32], grad_of(torchvision, op, x.float(), rois.float(), grad.float()),
                               **GRAD_TOL[torch.float32])
    assert torch.equal(ours[torch.float32], again)
    assert torch.equal(half, half_ref.half())


@pytest.mark.parametrize("pooled,sr,aligned,channels", [
    ((7, 7), 2, True, 16),   # 64-channel blocks, corners merged
    ((7, 7), 2, False, 72),  # a full and a partial 64-channel block
    ((3, 5), 1, True, 8),    # 1 x 1 grids
    ((16, 16), 2, True, 12),  # 32-channel blocks (the 64-channel grads would not fit the stage)
    ((7, 7), -1, True, 16),  # adaptive grids: taps one by one
], ids=str)
def test_backward_channel_quads(pooled, sr, aligned, channels):
    """The float backward with channels a multiple of 4 (a lane adds 4 channels with one
    16-byte atomic, a bin's coinciding corners merged first) against torchvision;
    non-finite gradients keep torchvision's NaN and inf pixels (those bins take the taps
    one by one); float16 is our float32 result rounded."""
    op = Op("roi_align", pooled, (sr, aligned), channels=channels)
    x = feature_map(2, channels, 40, 52, seed=4, dtype=torch.float32).to(DEV)
    rois = random_rois(300, extent=200.0, seed=7).to(DEV)
    grad = torch.randn(op(tvn, x, rois).shape, generator=torch.Generator().manual_seed(2)).to(DEV)
    torch.testing.assert_close(grad_of(tvn, op, x, rois, grad), grad_of(torchvision, op, x, rois, grad),
                               **GRAD_TOL[torch.float32])
    half = grad_of(tvn, op, x.half(), rois.half(), grad.half())
    torch.testing.assert_close(half.float(), grad_of(tvn, op, x.half().float(), rois.half().float(),
                                                     grad.half().float()), rtol=1e-2, atol=1e-2)
    bad = grad.clone()
    bad[0::5, 2, 0, 0] = float("inf")
    bad[1::7, 1, 0, 0] = float("nan")
    ours, ref = grad_of(tvn, op, x, rois, bad), grad_of(torchvision, op, x, rois, bad)
    assert torch.isinf(ref).any() and torch.isnan(ref).any()
    assert torch.equal(torch.isnan(ours), torch.isnan(ref)) and torch.equal(torch.isinf(ours), torch.isinf(ref))
    finite = torch.isfinite(ref)
    torch.testing.assert_close(ours[finite], ref[finite], **GRAD_TOL[torch.float32])


def test_deterministic_backward_keeps_non_finite_gradients():
    op = OPS[0]
    x, rois = inputs(op, torch.float32)
    grad = torch.randn(op(tvn, x, rois).shape, generator=torch.Generator().manual_seed(5)).to(DEV)
    grad[3, 2, 1, 1] = float("inf")
    grad[7, 1, 0, 0] = float("nan")
    atomic = grad_of(tvn, op, x, rois, grad)
    torch.use_deterministic_algorithms(True)
    try:
        det = grad_of(tvn, op, x, rois, grad)
    finally:
        torch.use_deterministic_algorithms(False)
    assert torch.equal(torch.isnan(det), torch.isnan(atomic))
    assert torch.equal(torch.isinf(det), torch.isinf(atomic))
    finite = torch.isfinite(atomic)
    torch.testing.assert_close(det[finite], atomic[finite], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("deterministic", (False, True))
@pytest.mark.parametrize("op", [Op("roi_align", (3, 2), (1, True)), Op("roi_align", (3, 2), (1, False)),
                                Op("roi_pool", (2, 2)), Op("ps_roi_align", (2, 2), (1,), channels=8),
                                Op("ps_roi_pool", (2, 2), channels=8)], ids=repr)
def test_gradcheck_float64(op, deterministic):
    x = feature_map(1, op.channels, 9, 11, dtype=torch.float64).to(DEV).requires_grad_()
    rois = torch.tensor([[0, 1.0, 1.5, 20.0, 30.0], [0, 0.5, 0.5, 3.0, 2.0], [0, 10.0, 5.0, 36.0, 30.0]],
                        dtype=torch.float64, device=DEV)
    torch.use_deterministic_algorithms(deterministic)
    try:
        # the atomic backward may round differently from run to run
        assert torch.autograd.gradcheck(lambda t: op(tvn, t, rois), (x,), nondet_tol=0.0 if deterministic else 1e-12)
    finally:
        torch.use_deterministic_algorithms(False)


def test_runs_on_the_current_stream():
    op = OPS[0]
    stream = torch.cuda.Stream()
    x, rois = inputs(op, torch.float32)
    torch.cuda.synchronize()
    with torch.cuda.stream(stream):
        # work queued on `stream` right before the op: the op must run after it
        y = x * 2 + 1
        out = op(tvn, y, rois)
        ref = op(torchvision, y, rois)
        xr = y.detach().clone().requires_grad_()
        op(tvn, xr, rois).sum().backward()
        g = xr.grad
    stream.synchronize()
    torch.testing.assert_close(out, ref, **TOL[torch.float32])
    xt = (x * 2 + 1).requires_grad_()
    op(torchvision, xt, rois).sum().backward()
    torch.testing.assert_close(g, xt.grad, **GRAD_TOL[torch.float32])


def test_strided_inputs():
    op = OPS[0]
    x, rois = inputs(op, torch.float32)
    ref = op(torchvision, x, rois)
    torch.testing.assert_close(op(tvn, x.to(memory_format=torch.channels_last), rois), ref, **TOL[torch.float32])
    wide = torch.zeros(rois.shape[0], 8, device=DEV)
    wide[:, 1:6] = rois
    torch.testing.assert_close(op(tvn, x, wide[:, 1:6]), ref, **TOL[torch.float32])


LAYOUTS = ("vectors", "odd-pixels", "odd-channels", "channel-tiles", "channel-slice", "plane-slice",
           "strided-width", "misaligned")


def _layout(name, dtype):
    """Maps that take each branch of the channels-last copy roi_pool reads through, made
    on the device so that views keep their strides: rows of whole 4-pixel vectors or not,
    channels a multiple of 4 or not, several channel tiles, views with gaps, a data
    pointer off a vector boundary."""
    big = feature_map(2, 80, 8, 24, seed=5, dtype=dtype).to(DEV)
    flat = feature_map(1, 1, 1, 2 * 16 * 96 + 1, seed=6, dtype=dtype).to(DEV).flatten()
    return {
        "vectors": lambda: big[:, :16, :, :12].contiguous(),        # 96 pixels, 16 channels
        "odd-pixels": lambda: big[:, :16, :7, :9].contiguous(),     # 63 pixels
        "odd-channels": lambda: big[:, :13, :, :12].contiguous(),
        "channel-tiles": lambda: big[:, :72, :, :12].contiguous(),  # a full and a partial 64-channel tile
        "channel-slice": lambda: big[:, 4:20, :, :12],              # rows of a wider map: no plane is one run
        "plane-slice": lambda: big[:, 8:24],                        # whole planes from a channel offset
        "strided-width": lambda: big[:, :16, :, ::2],               # pixels 2 apart
        "misaligned": lambda: flat[1:].view(2, 16, 8, 12),          # one element off a 16-byte boundary
    }[name]()


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64, torch.float16))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_roi_pool_layout_copies(layout, dtype):
    x = _layout(layout, dtype)
    assert x.is_contiguous() == (layout not in ("channel-slice", "plane-slice", "strided-width"))
    rois = random_rois(60, n_images=2, extent=64.0, dtype=dtype).to(DEV)  # on the 8 x 12 maps at scale 1/8
    op = Op("roi_pool", (7, 7), scale=0.125)
    out = op(tvn, x, rois)
    # float16 maxima are float16 values: torchvision's float32 result on the upcast input
    wide = torch.float32 if dtype == torch.float16 else dtype
    ref, where = torch.ops.torchvision.roi_pool(x.to(wide), rois.to(wide), op.scale, *op.output_size)
    assert (where >= 0).float().mean() > 0.5  # most bins hold map pixels: the argmax check means something
    torch.testing.assert_close(out, ref.to(dtype), rtol=0, atol=0)
    assert torch.equal(torch.from_dlpack(tvn._C.roi_pool(*_native(x, rois, op))[1]), where)


@pytest.mark.parametrize("output_size", ((7, 7), (3, 5), (2, 9)))
def test_roi_pool_ties_and_narrow_rois(output_size):
    """Maxima shared by many pixels (ReLU zeros, a block of zeros) and RoIs narrower than
    their bins (neighbouring bins on the same columns): the same values and argmax as
    torchvision, whose argmax is the first maximum in row-major order."""
    x = torch.relu(feature_map(2, 16, 20, 24, seed=3)).to(DEV)
    x[:, :, 5:9, 4:10] = 0
    narrow = torch.tensor([[0, 20, 20, 22, 60], [1, 16, 16, 16, 16], [0, 30, 10, 33, 70], [1, 0, 0, 95, 3]],
                          dtype=torch.float32, device=DEV)
    rois = torch.cat([random_rois(80, extent=100.0, seed=11).to(DEV), narrow])
    out = tvn.ops.roi_pool(x, rois, output_size, 0.25)
    ref, where = torch.ops.torchvision.roi_pool(x, rois, 0.25, *output_size)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    op = Op("roi_pool", output_size)
    assert torch.equal(torch.from_dlpack(tvn._C.roi_pool(*_native(x, rois, op))[1]), where)


def _need_free_gpu_memory(nbytes):
    if torch.cuda.mem_get_info()[0] < nbytes + (1 << 30):
        pytest.skip(f"needs {nbytes / 2**30 + 1:.1f} GiB of free GPU memory")


def test_planes_past_the_int_range():
    """A plane of more than 2^31 - 128 pixels (float16, 4.3 GB). roi_align's forward reads
    it with 64-bit offsets: RoIs at its bottom-right, whose last row lies past 2^31
    elements, give what they give on that corner cut out (coordinates that float16 holds
    exactly; the sample positions round differently near 46000, hence the tolerance).
    roi_pool's kernels and roi_align's backward (its channels-last sums) index pixels in
    int, so they refuse it with a clear error before they allocate their buffers, and give
    back what they allocated."""
    side = 46341  # side^2 = 2,147,488,281 pixels
    _need_free_gpu_memory(side * side * 2)
    x = torch.empty(1, 1, side, side, dtype=torch.float16, device=DEV)
    top, left = 46272, 41792  # the corner cut: rows top.. (to the last), columns left..left + 128
    x[:, :, top:, left:left + 128].copy_(feature_map(1, 1, side - top, 128, seed=9, dtype=torch.float16).to(DEV))
    cut = torch.tensor([[0, 32, 32, 96, 96], [0, 64, 0, 96, 64]], dtype=torch.float16, device=DEV)
    far = cut + torch.tensor([0, left, top, left, top], dtype=torch.float16, device=DEV)  # multiples of 32: exact
    ref = tvn.ops.roi_align(x[:, :, top:, left:left + 128].contiguous(), cut, 7, 1.0, 2, True)
    torch.testing.assert_close(tvn.ops.roi_align(x, far, 7, 1.0, 2, True), ref, rtol=1e-2, atol=1e-2)
    held = torch.cuda.memory_allocated()
    with pytest.raises(ValueError, match="roi_pool: height \\* width = 2147488281 is too large for the CUDA"):
        tvn.ops.roi_pool(x, far, 7, 1.0)
    assert torch.cuda.memory_allocated() == held
    del x
    held = torch.cuda.memory_allocated()
    grad = torch.ones(2, 1, 7, 7, dtype=torch.float16, device=DEV)
    with pytest.raises(ValueError, match="roi_align_backward: the gradient of a 1x1x46341x46341 map is too large"):
        torch.ops.tvops._roi_align_backward(grad, far, 1.0, 7, 7, 1, 1, side, side, 2, True)
    del grad
    assert torch.cuda.memory_allocated() == held
    torch.cuda.synchronize()


@pytest.mark.parametrize("name", ("roi_align", "roi_pool"))
def test_maps_past_the_int_range(name):
    """32769 channels of 256 x 256 (float16, 4.3 GB): the last channels' planes start past
    2^31 elements, so their offsets need 64 bits. Their outputs must equal those of the
    same RoIs on those channels cut out as a map of their own."""
    _need_free_gpu_memory(32769 * 256 * 256 * 2 * (2 if name == "roi_pool" else 1))  # roi_pool's channels-last copy
    x = torch.empty(1, 32769, 256, 256, dtype=torch.float16, device=DEV)
    x[:, :16].copy_(feature_map(1, 16, 256, 256, seed=12, dtype=torch.float16).to(DEV))
    x[:, -16:].copy_(feature_map(1, 16, 256, 256, seed=13, dtype=torch.float16).to(DEV))
    rois = random_rois(40, n_images=1, extent=256.0, seed=14, dtype=torch.float16).to(DEV)
    args = (7, 1.0, 2, True) if name == "roi_align" else (7, 1.0)
    out = getattr(tvn.ops, name)(x, rois, *args)
    for part in (slice(0, 16), slice(-16, None)):
        ref = getattr(tvn.ops, name)(x[:, part].contiguous(), rois, *args)
        torch.testing.assert_close(out[:, part], ref, rtol=1e-3, atol=1e-3)  # paths may round apart by an ulp
    assert out[:, -16:].abs().sum() > 0
    torch.cuda.synchronize()


def test_empty_inputs():
    x = feature_map(dtype=torch.float32).to(DEV)
    none = torch.zeros(0, 5, device=DEV)
    assert tvn.ops.roi_align(x, none, 7, 0.25, 2, True).shape == (0, x.shape[1], 7, 7)
    assert tvn.ops.roi_pool(x, none, 7, 0.25).shape == (0, x.shape[1], 7, 7)
    xe = torch.zeros(2, 3, 0, 5, device=DEV)
    rois = random_rois(4).to(DEV)
    assert torch.equal(tvn.ops.roi_align(xe, rois, 2, 0.25, 2, True), torch.zeros(4, 3, 2, 2, device=DEV))


def test_out_of_range_batch_index_pools_zeros():
    # Documented CUDA behaviour: checking on the host would cost a sync; such RoIs give
    # zeros and no gradient (torchvision reads out of bounds).
    x = feature_map(dtype=torch.float32).to(DEV).requires_grad_()
    rois = random_rois(6).to(DEV)
    rois[2, 0] = 7
    rois[4, 0] = -3
    for name, args in (("roi_align", (2, True)), ("roi_pool", ())):
        out = getattr(tvn.ops, name)(x, rois, (3, 3), 0.25, *args)
        assert torch.all(out[2] == 0) and torch.all(out[4] == 0)
        good = [0, 1, 3, 5]
        ref = getattr(torchvision.ops, name)(x.detach(), rois[good], (3, 3), 0.25, *args)
        torch.testing.assert_close(out[good].detach(), ref, **TOL[torch.float32])
        out.sum().backward()
        assert torch.isfinite(x.grad).all()
        x.grad = None
    torch.cuda.synchronize()


def test_bad_inputs_raise_clear_errors():
    x = feature_map(dtype=torch.float32).to(DEV)
    rois = random_rois(5)
    with pytest.raises(RuntimeError, match="same device"):
        tvn.ops.roi_align(x, rois, 7, 0.25, 2, True)  # CPU rois, CUDA input
    with pytest.raises(RuntimeError, match="same device"):
        tvn.ops.roi_pool(x, rois, 7, 0.25)
    with pytest.raises(AssertionError):
        tvn.ops.roi_align(x, rois[:, 1:].to(DEV), 7, 0.25, 2, True)  # [K, 4] tensor
    with pytest.raises(TypeError, match="same type"):
        tvn.ops.roi_align(x, rois.double().to(DEV), 7, 0.25, 2, True)
    with pytest.raises(ValueError, match="multiple of pooling"):
        tvn.ops.ps_roi_align(x, rois.to(DEV), 7, 0.25, 2)
    with pytest.raises(ValueError, match="4d tensor"):
        tvn.ops.roi_pool(x[0], rois.to(DEV), 7, 0.25)
    # the device is still usable afterwards
    out = tvn.ops.roi_align(x, rois.to(DEV), 7, 0.25, 2, True)
    torch.testing.assert_close(out, torchvision.ops.roi_align(x, rois.to(DEV), 7, 0.25, 2, True),
                               **TOL[torch.float32])
    torch.cuda.synchronize()


def test_boxes_as_list_of_tensors():
    x = feature_map(dtype=torch.float32).to(DEV)
    boxes = [random_rois(20, seed=5)[:, 1:].to(DEV), random_rois(7, seed=6)[:, 1:].to(DEV)]
    ref = torchvision.ops.roi_align(x, boxes, 7, 0.25, 2, True)
    torch.testing.assert_close(tvn.ops.roi_align(x, boxes, 7, 0.25, 2, True), ref, **TOL[torch.float32])


@pytest.mark.parametrize("forward", ("default", "tiles", "lanes"))  # 120 RoIs: the per-RoI kernel by default
@pytest.mark.parametrize("deterministic", (False, True))
def test_multi_scale_roi_align(deterministic, forward, monkeypatch):
    from torchvision_native.ops import MultiScaleRoIAlign

    if forward != "default":
        monkeypatch.setenv("TVOPS_ROI_FORWARD", forward)

    g = torch.Generator().manual_seed(0)
    feats = {"p2": torch.randn(2, 8, 64, 48, generator=g), "p3": torch.randn(2, 8, 32, 24, generator=g),
             "p4": torch.randn(2, 8, 16, 12, generator=g), "pool": torch.randn(2, 8, 8, 6, generator=g)}
    feats = {k: v.to(DEV) for k, v in feats.items()}
    boxes = [random_rois(60, extent=200.0, seed=s)[:, 1:].clamp(0, 190).to(DEV) for s in (1, 2)]
    shapes = [(256, 192), (250, 190)]
    names = ["p2", "p3", "p4"]
    ref_mod = torchvision.ops.MultiScaleRoIAlign(names, 7, 2)
    our_mod = MultiScaleRoIAlign(names, 7, 2)
    grads = []
    outs = []
    for mod in (ref_mod, our_mod):
        fs = {k: v.clone().requires_grad_() for k, v in feats.items()}
        torch.use_deterministic_algorithms(deterministic and mod is our_mod)
        try:
            out = mod(fs, boxes, shapes)
            out.backward(torch.ones_like(out))
        finally:
            torch.use_deterministic_algorithms(False)
        outs.append(out)
        grads.append([fs[n].grad for n in names])
    torch.testing.assert_close(outs[1], outs[0], **TOL[torch.float32])
    for ours, ref in zip(grads[1], grads[0]):
        torch.testing.assert_close(ours, ref, **GRAD_TOL[torch.float32])


def test_patched_torchvision_pooler_on_cuda():
    # patch_torchvision serves MultiScaleRoIAlign's pooling with one fused call; torchvision's
    # own module must then give torchvision's values and gradients on CUDA too.
    g = torch.Generator().manual_seed(3)
    feats = {str(i): torch.randn(2, 16, 96 >> i, 128 >> i, generator=g).to(DEV) for i in range(4)}
    boxes = []
    for n in (300, 170):
        xy = torch.rand(n, 2, generator=g) * 300
        boxes.append(torch.cat([xy, xy + torch.rand(n, 2, generator=g) ** 2 * 400 + 2], 1).to(DEV))
    shapes = [(384, 512), (380, 500)]
    pooler = torchvision.ops.MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)

    def run():
        leaves = {k: v.clone().requires_grad_() for k, v in feats.items()}
        out = pooler(leaves, boxes, shapes)
        out.backward(torch.linspace(-1, 1, out.numel(), device=DEV).view_as(out))
        return out.detach(), [leaves[k].grad for k in sorted(leaves)]

    ref, ref_grads = run()
    assert (pooler.map_levels(boxes).bincount(minlength=4) > 0).sum() >= 3
    half = {k: v.half() for k, v in feats.items()}
    with torch.autocast("cuda", dtype=torch.float16):  # float16 maps, float32 boxes (training)
        ref_amp = pooler(half, boxes, shapes)
    with tvn.patched_torchvision():
        out, grads = run()
        with torch.inference_mode():
            fast = pooler(feats, boxes, shapes)
        with torch.autocast("cuda", dtype=torch.float16):
            amp = pooler(half, boxes, shapes)
    torch.testing.assert_close(out, ref, **TOL[torch.float32])
    torch.testing.assert_close(fast, ref, **TOL[torch.float32])
    assert amp.dtype == ref_amp.dtype == torch.float16
    torch.testing.assert_close(amp, ref_amp, rtol=1e-3, atol=1e-3)
    for ours, theirs in zip(grads, ref_grads):
        torch.testing.assert_close(ours, theirs, **GRAD_TOL[torch.float32])


def _window_case(case, dtype):
    """Inputs that drive roi_align's windowed NCHW kernels down each of their paths."""
    g = torch.Generator().manual_seed(7)
    if case in ("ra7", "odd-width", "adaptive"):
        w = 151 if case == "odd-width" else 152  # odd rows: scalar loads; else 16-byte vectors
        x = torch.randn(2, 24, 100, w, generator=g, dtype=torch.float64)
        xy = torch.rand(300, 2, generator=g, dtype=torch.float64) * 500
        wh = 2 + torch.rand(300, 2, generator=g, dtype=torch.float64) * 100
        idx = torch.randint(0, 2, (300, 1), generator=g).to(torch.float64)
        rois = torch.cat([idx, xy, xy + wh], 1)
        args = (7, 0.25, -1 if case == "adaptive" else 2, case != "odd-width")
    elif case == "big":  # a RoI too big for the window beside small ones: straight from global memory
        x = torch.randn(1, 8, 300, 300, generator=g, dtype=torch.float64)
        rois = torch.tensor([[0, 0.0, 0.0, 299.0, 299.0], [0, 2.0, 3.0, 20.0, 30.0], [0, 5.5, 1.0, 9.0, 4.0],
                             [0, 10.0, 10.0, 11.0, 11.0]], dtype=torch.float64)
        args = (7, 1.0, 2, True)
    else:  # crowded: the union of a group's footprints does not fit, one RoI a window
        # (crowded-mid: footprints that fit the float4 window one RoI at a time; crowded:
        # ones that fit only the 48 KB planar window, so float32 reads them from global memory)
        x = torch.randn(2, 10 if case == "crowded-mid" else 8, 200, 200, generator=g, dtype=torch.float64)
        xy = torch.rand(40, 2, generator=g, dtype=torch.float64) * (40 if case == "crowded-mid" else 30)
        wh = (45 if case == "crowded-mid" else 80) + torch.rand(40, 2, generator=g, dtype=torch.float64) * 20
        rois = torch.cat([torch.zeros(40, 1, dtype=torch.float64), xy, xy + wh], 1)
        args = (7, 1.0, 2, True)
    return x.to(dtype).to(DEV), rois.to(dtype).to(DEV), args


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
@pytest.mark.parametrize("case", ("ra7", "odd-width", "adaptive", "big", "crowded", "crowded-mid"))
@pytest.mark.parametrize("forward", ("default", "tiles", "lanes", "direct"))
def test_roi_align_windows(case, dtype, forward, monkeypatch):
    """Each case by default (up to 128 x 7 x 7 bins: the per-RoI kernel, no windows), through the
    windows whatever the count (tiles) and through the per-RoI kernel (direct)."""
    if forward != "default":
        monkeypatch.setenv("TVOPS_ROI_FORWARD", forward)
    x, rois, (size, scale, sr, aligned) = _window_case(case, dtype)
    fn = lambda m, t: m.ops.roi_align(t, rois, size, scale, sr, aligned)  # noqa: E731
    torch.testing.assert_close(fn(tvn, x), fn(torchvision, x), **TOL[dtype])
    grad = torch.randn(fn(tvn, x).shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    grad = grad.to(dtype).to(DEV)

    def backward(module):
        xr = x.detach().clone().requires_grad_()
        fn(module, xr).backward(grad)
        return xr.grad

    ref = backward(torchvision)
    torch.testing.assert_close(backward(tvn), ref, **GRAD_TOL[dtype])
    torch.use_deterministic_algorithms(True)
    try:
        first, second = backward(tvn), backward(tvn)
    finally:
        torch.use_deterministic_algorithms(False)
    assert torch.equal(first, second)
    # fixed point keeps ~44 bits below max|grad|: float32 accuracy, not float64's
    torch.testing.assert_close(first, ref, **GRAD_TOL[torch.float32])
    if dtype == torch.float32:  # 16-bit maps: our float32 result on the upcast map, rounded
        for half in (torch.float16, torch.bfloat16):
            xh, rh = x.to(half), rois.to(half)
            ours = tvn.ops.roi_align(xh, rh, size, scale, sr, aligned)
            exact = tvn.ops.roi_align(xh.float(), rh.float(), size, scale, sr, aligned).to(half)
            torch.testing.assert_close(ours, exact, rtol=0, atol=0)


def _tile_case(width, aligned, seed=3):
    """roi_align inputs for the tile forward: RoIs of bins up to ~12 pixels spread over
    several 32-pixel tiles of a 150-row map (crossing tile edges and the map's border),
    with the RoIs it leaves to the group kernels mixed in: bins too big for its margin, a
    NaN box, batch indices of no image, empty and inverted boxes. A NaN pixel and an inf
    pixel sit where some bins sample them and others only skip past them. 40 channels: two
    blocks of the lane kernel's 32 channels (the second one partial), five of the tile kernel's 8."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 40, 150, width, generator=g, dtype=torch.float64)
    x[0, 3, 40, min(50, width - 3)] = float("nan")
    x[1, :, 149, min(100, width - 1)] = float("inf")
    n = 600
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * torch.tensor([width + 20.0, 170.0]) - 10
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) ** 2 * 90  # bins from 0 to ~13 pixels
    idx = torch.randint(0, 2, (n, 1), generator=g).to(torch.float64)
    rois = torch.cat([idx, xy, xy + wh], 1)
    rois[5] = torch.tensor([0, float("nan"), 3.0, 9.0, 12.0])
    rois[6, 0] = -1.0
    rois[7, 0] = 2.0
    rois[8, 1:] = torch.tensor([30.0, 40.0, 30.0, 40.0])  # empty
    rois[9, 1:] = torch.tensor([60.0, 70.0, 50.0, 52.0])  # inverted
    rois[10, 1:] = torch.tensor([0.0, 0.0, width - 1.0, 149.0])  # the whole map: big bins
    return x, rois, (7, 1.0, 2, aligned)


@pytest.mark.parametrize("forward", ("tiles", "tiles4", "lanes", "groups", "direct"))
@pytest.mark.parametrize("width,aligned", [(168, True), (170, False), (40, True)])
def test_roi_align_tile_forward(forward, width, aligned, monkeypatch):
    """Every forward path of float math (TVOPS_ROI_FORWARD picks it) against torchvision,
    16-byte rows (width 168) and scalar ones (170, not a multiple of 4), a map narrower
    than one tile's window (40); float16 / bfloat16 equal our float32 result rounded."""
    monkeypatch.setenv("TVOPS_ROI_FORWARD", forward)
    x, rois, (size, scale, sr, al) = _tile_case(width, aligned)
    bad = [5, 6, 7]  # torchvision's CUDA kernel reads out of bounds for these: ours pool zeros
    good = rois.float()  # torchvision's float32 arithmetic: the same sample positions
    good[bad] = good[0].clone()
    for pooled in (size, (3, 14)):
        ref = torchvision.ops.roi_align(x.float().to(DEV), good.to(DEV), pooled, scale, sr, al)
        ours = tvn.ops.roi_align(x.float().to(DEV), rois.float().to(DEV), pooled, scale, sr, al)
        assert torch.all(ours[bad] == 0)
        ours[bad] = ref[bad]
        torch.testing.assert_close(ours, ref, **TOL[torch.float32], equal_nan=True)
    for half in (torch.float16, torch.bfloat16):
        xh, rh = x.to(half).to(DEV), rois.to(half).to(DEV)
        exact = tvn.ops.roi_align(xh.float(), rh.float(), size, scale, sr, al).to(half)
        torch.testing.assert_close(tvn.ops.roi_align(xh, rh, size, scale, sr, al), exact, rtol=0, atol=0,
                                   equal_nan=True)
