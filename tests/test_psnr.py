"""psnr family: fused per-image MSE / MAE / PSNR (Y channel, crop border, quantise)
on every backend here, against the float64 reference (fastiqa/backends/reference/_psnr.py)."""

import math

import pytest
import torch

import fastiqa.functional as F
from fastiqa.backends import reference as R
from fastiqa.ops import _dispatch
from fastiqa.testing import assert_close

from support import cpu_backends, named, overload, param_cases, tol

BACKENDS = cpu_backends("psnr")

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
DTYPE_ID = lambda dtype: str(dtype).replace("torch.", "")
SHAPES = [(1, 3, 11, 11), (3, 3, 37, 53), (2, 5, 16, 29)]


def _images(shape, dtype, grid=False, layout="contiguous"):
    """Fresh random images; grid=True puts them near the 8-bit grid but never on a
    rounding tie (so quantisation is the same in any precision)."""
    if grid:
        k = torch.randint(0, 256, shape).double()
        x = (k + torch.empty(shape, dtype=torch.float64).uniform_(-0.4, 0.4)) / 255.0
        x[0, 0, 0, 0] = -0.1  # exercises the clamp
    else:
        x = torch.rand(shape, dtype=torch.float64)
    x = x.to(dtype)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    elif layout == "strided":  # a slice with gaps: must be read correctly, not wrongly
        big = torch.zeros(shape[0], shape[1], shape[2], shape[3] * 2, dtype=dtype)
        big[..., ::2] = x
        x = big[..., ::2]
    return x


def _oracle(kind, x, y, **kw):
    x64, y64 = x.double(), y.double()
    fn = R.mse_per_image if kind == "mse" else R.mae_per_image
    return fn(
        x64,
        y64,
        kw.get("data_range", 1.0),
        kw.get("y_channel", False),
        kw.get("crop_border", 0),
        kw.get("quantize", False),
    )


def _same_dtype_reference(kind, x, y, **kw):
    fn = R.mse_per_image if kind == "mse" else R.mae_per_image
    return fn(
        x, y, kw.get("data_range", 1.0), kw.get("y_channel", False), kw.get("crop_border", 0), kw.get("quantize", False)
    )


def _call(kind, x, y, backend, **kw):
    return {"mse": F.mse, "mae": F.mae}[kind](x, y, reduction="none", backend=backend, **kw)


OPTIONS = [
    ("plain", {}),
    ("y", {"y_channel": True}),
    ("crop3", {"crop_border": 3}),
    ("quant", {"quantize": True}),
    ("y-crop4-quant", {"y_channel": True, "crop_border": 4, "quantize": True}),
]
VALUE_CASES = [
    c
    for c in param_cases(
        named(BACKENDS),
        named(DTYPES, DTYPE_ID),
        named(["mse", "mae"]),
        OPTIONS,
        [("x".join(map(str, s)), (s,)) for s in SHAPES],
    )
    if not (c.values[3].get("y_channel") and c.values[4][1] != 3)
]  # Y needs RGB


@pytest.mark.parametrize("backend,dtype,kind,opts,shape", VALUE_CASES)
def test_values_match_reference(backend, dtype, kind, opts, shape):
    grid = opts.get("quantize", False)
    x, y = _images(shape, dtype, grid), _images(shape, dtype, grid)
    got = _call(kind, x, y, backend, **opts)
    assert got.shape == (shape[0],)
    assert got.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    # judged by the error of the reference run in the same dtype (fastiqa.testing)
    assert_close(got, _oracle(kind, x, y, **opts), _same_dtype_reference(kind, x, y, **opts), what=kind)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["channels_last", "strided"])
def test_layouts(backend, layout):
    shape = (2, 3, 15, 21)
    x = _images(shape, torch.float32, True, layout)
    y = _images(shape, torch.float32, True, "contiguous")
    for opts in ({"crop_border": 2}, {"y_channel": True, "quantize": True, "crop_border": 1}):
        for kind in ("mse", "mae"):
            got = _call(kind, x, y, backend, **opts)
            torch.testing.assert_close(got.double(), _oracle(kind, x, y, **opts), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_psnr_values_data_range_and_mean(backend):
    x, y = _images((3, 3, 20, 24), torch.float32), _images((3, 3, 20, 24), torch.float32)
    for data_range in (1.0, 255.0):
        xs, ys = x * data_range, y * data_range
        got = F.psnr(xs, ys, data_range, y_channel=True, crop_border=2, backend=backend, reduction="none")
        want = R.psnr(xs.double(), ys.double(), data_range, "none", None, True, 2, False)
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
        mean = F.psnr(xs, ys, data_range, "mean", y_channel=True, crop_border=2, backend=backend)
        torch.testing.assert_close(mean.double(), want.mean(), rtol=1e-5, atol=1e-5)
    # the definition, written out for one image
    m = ((x[0].double() - y[0].double()) ** 2).mean().item()
    assert F.psnr(x, y, backend=backend, reduction="none")[0].item() == pytest.approx(
        10 * math.log10(1.0 / m), rel=1e-5
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_identical_images_give_inf_unless_eps(backend):
    x = _images((2, 3, 12, 13), torch.float32)
    assert torch.isinf(F.psnr(x, x.clone(), backend=backend, reduction="none")).all()
    assert torch.isinf(F.psnr(x, x.clone(), y_channel=True, quantize=True, backend=backend, reduction="none")).all()
    got = F.psnr(x, x.clone(), eps=1e-10, backend=backend, reduction="none")
    torch.testing.assert_close(got, torch.full((2,), 100.0), rtol=1e-6, atol=1e-4)
    assert (F.mse(x, x.clone(), backend=backend, reduction="none") == 0).all()


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "triton"])
@pytest.mark.parametrize("opts", [{}, {"y_channel": True, "crop_border": 2}, {"crop_border": 1}])
def test_gradcheck_float64(backend, opts):
    x = torch.rand(2, 3, 9, 11, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 3, 9, 11, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: F.psnr(a, b, backend=backend, **opts, reduction="none"), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: F.mse(a, b, backend=backend, **opts, reduction="none"), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: F.mae(a, b, backend=backend, **opts, reduction="none"), (x, y))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_gradients_match_reference(backend, dtype, layout):
    rtol, atol = tol(dtype)
    shape = (2, 3, 13, 17)
    x0, y0 = _images(shape, dtype, layout=layout), _images(shape, dtype, layout=layout)
    w = torch.rand(2, dtype=torch.float64)  # a non-uniform grad_out per image
    for opts in ({}, {"y_channel": True, "crop_border": 2}):
        for kind in ("psnr", "mse", "mae"):
            x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
            fn = {"psnr": F.psnr, "mse": F.mse, "mae": F.mae}[kind]
            (fn(x, y, reduction="none", backend=backend, **opts) * w.to(torch.float32)).sum().backward()
            xr, yr = x0.double().requires_grad_(), y0.double().requires_grad_()
            if kind == "psnr":
                ref = R.psnr(xr, yr, 1.0, "none", None, opts.get("y_channel", False), opts.get("crop_border", 0))
            else:
                ref = _oracle(kind, xr, yr, **opts)
            (ref * w).sum().backward()
            assert x.grad.dtype == dtype and x.grad.shape == x.shape
            scale = xr.grad.abs().max().item()
            torch.testing.assert_close(x.grad.double(), xr.grad, rtol=rtol, atol=atol * max(scale, 1))
            torch.testing.assert_close(y.grad.double(), yr.grad, rtol=rtol, atol=atol * max(scale, 1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_quantize_has_zero_gradient(backend):
    x = torch.rand(2, 3, 8, 9, requires_grad=True)
    y = torch.rand(2, 3, 8, 9)
    F.psnr(x, y, quantize=True, backend=backend, reduction="none").sum().backward()
    assert x.grad is not None and (x.grad == 0).all()


# rows (Y + crop: image rows) and segments (a contiguous image: 16384-sample runs)
@pytest.mark.parametrize("shape,fn", [((4, 3, 64, 70), lambda x, y: F.psnr(x, y, y_channel=True, crop_border=3,
                                                                           backend="cpu", reduction="none")),
                                      ((3, 3, 97, 131), lambda x, y: F.mse(x, y, backend="cpu", reduction="none"))],
                         ids=["rows", "segments"])
def test_thread_count_does_not_change_the_result(shape, fn):
    if "cpu" not in BACKENDS:
        pytest.skip("compiled CPU kernels not built")
    x, y = torch.rand(shape), torch.rand(shape)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fn(x, y)
        torch.set_num_threads(2)
        two = fn(x, y)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


# The CPU kernel sums a row as a head up to a vector-aligned offset, whole vectors and a tail
# (masked loads on avx2 / avx512), and writes the gradient of the kept pixels only, zeroing the
# cropped border apart. Widths 37 and 53 with crop 3 leave partial heads and tails at every
# vector width; the gradient buffer is first filled by an uncropped call of the same shape
# (the buffer pool hands it back), so a border left unwritten would show.
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("opts", [{"crop_border": 3}, {"y_channel": True, "crop_border": 3}], ids=["crop", "y-crop"])
def test_cropped_rows_heads_tails_and_zero_border(dtype, layout, opts):
    if "cpu" not in BACKENDS:
        pytest.skip("compiled CPU kernels not built")
    shape, k = (2, 3, 21, 53), 3
    x0, y0 = _images(shape, dtype, layout=layout), _images(shape, dtype, layout=layout)
    w = torch.rand(shape[0], dtype=torch.float64)
    for crop in (0, k):
        x = x0.clone().requires_grad_()
        got = F.mse(x, y0, reduction="none", backend="cpu", **dict(opts, crop_border=crop))
        (got * w.to(got.dtype)).sum().backward()
    assert_close(got, _oracle("mse", x0, y0, **opts), _same_dtype_reference("mse", x0, y0, **opts), what="mse")
    xr = x0.double().clone().requires_grad_()
    (_oracle("mse", xr, y0, **opts) * w).sum().backward()
    # float32: a small luma difference is a cancellation (error relative to the largest gradient)
    atol = (1e-6 if dtype == torch.float32 else 1e-13) * xr.grad.abs().max().item()
    torch.testing.assert_close(x.grad.double(), xr.grad, rtol=1e-5, atol=atol)
    border = torch.ones(shape, dtype=torch.bool)
    border[:, :, k:-k, k:-k] = False
    assert (x.grad[border] == 0).all()
    # a tensor whose data starts one element into its storage (no longer vector-aligned):
    # the head is computed from the offset within the images, so the sums are bitwise equal
    xs, ys = (torch.empty(t.numel() + 1, dtype=dtype)[1:].as_strided(shape, t.stride()).copy_(t) for t in (x0, y0))
    assert xs.stride() == x0.stride() and xs.data_ptr() % 64 != 0
    assert torch.equal(F.mse(xs, ys, reduction="none", backend="cpu", **opts),
                       F.mse(x0, y0, reduction="none", backend="cpu", **opts))


# (3, 3, 97, 131): 38121 samples an image, three 16384-sample segments of the CPU kernel
# (csrc/cpu/psnr_impl.h), the last one shorter; (2, 1, 1, 40000): one row, one channel
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,layout", [((3, 3, 97, 131), "contiguous"), ((3, 3, 97, 131), "channels_last"),
                                          ((2, 1, 1, 40000), "contiguous")], ids=["planar", "channels_last", "one_row"])
def test_images_longer_than_a_segment(backend, dtype, layout, shape):
    x0, y0 = _images(shape, dtype, layout=layout), _images(shape, dtype, layout=layout)
    for kind in ("mse", "mae"):
        for opts in ({}, {"quantize": True}):
            x = x0.clone().requires_grad_(not opts)
            got = _call(kind, x, y0, backend, **opts)
            assert_close(got, _oracle(kind, x0, y0, **opts), _same_dtype_reference(kind, x0, y0, **opts), what=kind)
            if opts:
                continue
            w = torch.rand(shape[0], dtype=torch.float64)
            (got * w.to(got.dtype)).sum().backward()
            xr = x0.double().clone().requires_grad_()
            (_oracle(kind, xr, y0) * w).sum().backward()
            torch.testing.assert_close(x.grad.double(), xr.grad, rtol=1e-5, atol=1e-12)


def test_y_channel_matches_published_formula():
    """Y = 16 + 65.481 R + 128.553 G + 24.966 B on [0, 1] RGB, Y in [16, 235] / 255."""
    rgb = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.2, 0.5, 0.7]], dtype=torch.float64)
    x = rgb.t().reshape(1, 3, 1, 4)
    y = R.rgb_to_y(x).flatten()
    want = [(16 + 65.481 * r + 128.553 * g + 24.966 * b) / 255 for r, g, b in rgb.tolist()]
    torch.testing.assert_close(y, torch.tensor(want, dtype=torch.float64))
    assert y[0].item() * 255 == pytest.approx(235.0) and y[1].item() * 255 == pytest.approx(16.0)


def test_quantize_matches_png_rounding():
    """quantize rounds like saving to PNG: clamp, *255, round half to even, /255."""
    vals = torch.tensor(
        [-0.5, 0.0, 0.5 / 255, 1.5 / 255, 2.5 / 255, 0.49 / 255, 254.5 / 255, 1.0, 2.0], dtype=torch.float64
    )
    want = torch.tensor([0, 0, 0, 2, 2, 0, 254, 255, 255], dtype=torch.float64) / 255
    torch.testing.assert_close(R.quantize8(vals), want)
    # the kernel's rounding, seen through MAE against a zero image
    x = vals.view(1, 1, 1, -1)
    for backend in BACKENDS:
        for k in range(vals.numel()):
            got = F.mae(
                x[..., k : k + 1], torch.zeros_like(x[..., k : k + 1]), quantize=True, backend=backend, reduction="none"
            )
            assert got.item() == pytest.approx(want[k].item(), abs=1e-12), (backend, k)


def test_bad_arguments():
    x, y = torch.rand(2, 3, 10, 12), torch.rand(2, 3, 10, 12)
    with pytest.raises(ValueError, match="crop_border"):
        F.psnr(x, y, crop_border=5)
    with pytest.raises(ValueError, match="crop_border"):
        F.mse(x, y, crop_border=-1)
    with pytest.raises(ValueError, match="y_channel"):
        F.psnr(x[:, :1], y[:, :1], y_channel=True)
    with pytest.raises(TypeError, match="pred must be a floating-point"):
        F.psnr((x * 255).to(torch.uint8), y)
    with pytest.raises(ValueError, match="same shape"):
        F.mae(x, y[:, :, :9])
    with pytest.raises(ValueError, match="reduction"):
        F.psnr(x, y, reduction="sum")
    with pytest.raises(ValueError, match="data_range"):
        F.psnr(x, y, data_range=0)
    with pytest.raises(ValueError, match="eps"):
        F.psnr(x, y, eps=-1.0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.psnr(x[0], y[0])
    with pytest.raises(TypeError, match="quantize"):
        F.psnr(x, y, quantize=1)
    with pytest.raises(ValueError, match="backend"):
        F.psnr(x, y, backend="nope")


def test_empty_batch():
    x = torch.rand(0, 3, 8, 8)
    assert F.psnr(x, x, reduction="none").shape == (0,)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "triton"])
def test_opcheck(backend):
    x = torch.rand(2, 3, 9, 10, requires_grad=True)
    y = torch.rand(2, 3, 9, 10)
    for args in [
        (0, 1, True, False, 1.0, True),
        (1, 0, False, False, 1.0, True),
        (0, 2, True, True, 255.0, False),
    ]:
        torch.library.opcheck(overload("psnr_fwd", backend), (x, y, *args))
    torch.library.opcheck(overload("psnr_bwd", backend), (torch.rand(2, 3, 9, 10), torch.rand(2), True, True))


def test_torch_compile_fullgraph():
    backend = "cpu" if "cpu" in BACKENDS else "reference"

    def loss(a, b):
        return -F.psnr(a, b, y_channel=True, crop_border=1, backend=backend, reduction="none").mean()

    x = torch.rand(2, 3, 12, 14, requires_grad=True)
    y = torch.rand(2, 3, 12, 14)
    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    out = compiled(x, y)
    out.backward()
    g = x.grad.clone()
    x.grad = None
    eager = loss(x, y)
    eager.backward()
    torch.testing.assert_close(out, eager)
    torch.testing.assert_close(g, x.grad)


GPU_BACKENDS = ["cuda", "triton"]


@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_cuda_tensors_match_reference(backend, dtype, layout):
    """CUDA tensors on the CUDA and Triton kernels (runs where a GPU is present,
    e.g. tests/gpu/gpu_check.sh; skipped here)."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if _dispatch.triton_interpreted() and backend == "triton":
        pytest.skip("TRITON_INTERPRET=1: Triton runs on CPU tensors in this session")
    ok, why = _dispatch.available(backend, torch.device("cuda"), "psnr_fwd")
    if not ok:
        pytest.skip(why)
    rtol, atol = tol(dtype)
    for shape in SHAPES:
        for opts in (
            {},
            {"crop_border": 3},
            {"y_channel": True, "crop_border": 4, "quantize": True},
            {"y_channel": True},
        ):
            if opts.get("y_channel") and shape[1] != 3:
                continue
            x = _images(shape, dtype, True, layout)
            y = _images(shape, dtype, True, layout)
            for kind in ("mse", "mae"):
                got = _call(kind, x.cuda(), y.cuda(), backend, **opts).cpu()
                torch.testing.assert_close(got.double(), _oracle(kind, x, y, **opts), rtol=rtol, atol=atol)
            if not opts.get("quantize"):
                xg, yg = x.cuda().requires_grad_(), y.cuda().requires_grad_()
                w = torch.rand(shape[0], device="cuda")
                (F.psnr(xg, yg, backend=backend, **opts, reduction="none") * w).sum().backward()
                xr, yr = x.double().requires_grad_(), y.double().requires_grad_()
                ref = R.psnr(xr, yr, 1.0, "none", None, opts.get("y_channel", False), opts.get("crop_border", 0))
                (ref * w.cpu().double()).sum().backward()
                scale = max(xr.grad.abs().max().item(), 1)
                torch.testing.assert_close(xg.grad.cpu().double(), xr.grad, rtol=rtol, atol=atol * scale)
                torch.testing.assert_close(yg.grad.cpu().double(), yr.grad, rtol=rtol, atol=atol * scale)


def test_psnr_loss_module_trains():
    from fastiqa.nn import PSNRLoss

    target = torch.rand(2, 3, 16, 16)
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    loss_fn = PSNRLoss(y_channel=True, crop_border=1)
    opt = torch.optim.Adam([pred], lr=0.05)
    first = loss_fn(pred, target).item()
    for _ in range(20):
        opt.zero_grad()
        loss = loss_fn(pred, target)
        loss.backward()
        opt.step()
    assert loss.item() < first - 3  # PSNR went up by more than 3 dB
    want = -R.psnr(pred.detach().double(), target.double(), 1.0, "mean", 1e-8, True, 1)
    assert loss_fn(pred, target).item() == pytest.approx(want.item(), rel=1e-5)
    with pytest.raises(ValueError, match="eps"):
        PSNRLoss(eps=0)
