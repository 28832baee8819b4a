"""Per-axis SSIM windows (issue 19 item 2): win_size and win_sigma as one number or one per
spatial axis, (H, W) (torchmetrics' kernel_size / sigma sequences), on the SSIM family and
its modules, every backend here, against a float64 oracle written here from the definition
(the explicit 2-D window, the outer product of the two 1-D Gaussians); gradients for both
inputs by gradcheck and against the oracle's autograd; torchmetrics as the peer."""

import warnings

import pytest
import torch
import torch.nn.functional as TF

import fastiqa.functional as F
import fastiqa.nn as N
from fastiqa.backends import reference as R

from support import cpu_backends, overload, tol

BACKENDS = cpu_backends("ssim")
# the Triton interpreter takes seconds per call: its full matrix is in the slow suite,
# test_triton_per_axis_smoke keeps one forward + gradient case in the fast one
SLOW_TRITON = [pytest.param(b, marks=pytest.mark.slow) if b == "triton" else b for b in BACKENDS]
PADDINGS = ["valid", "same_zero", "same_reflect"]
# (win_size, win_sigma): tall, wide, small sigma across many taps
WINDOWS = [((7, 11), (1.0, 1.5)), ((11, 3), (2.0, 0.7)), ((5, 9), (1.5, 0.6))]
WIN_IDS = ["7x11", "11x3", "5x9"]


def _gauss(k, sigma):
    c = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
    g = torch.ones(k, dtype=torch.float64) if sigma == float("inf") else torch.exp(-c * c / (2 * sigma * sigma))
    return g / g.sum()


def oracle_map(x, y, win_size, win_sigma, padding="valid", r=1.0, sample=False):
    """The SSIM map by its definition, float64, with the 2-D window outer(g_h, g_w)."""
    x, y = x.double(), y.double()
    (kh, kw), (sh, sw) = win_size, win_sigma
    c = x.shape[1]
    w = torch.outer(_gauss(kh, sh), _gauss(kw, sw)).expand(c, 1, kh, kw)
    ph, pw = kh // 2, kw // 2

    def blur(t):
        if padding == "same_zero":
            t = TF.pad(t, (pw, pw, ph, ph))
        elif padding == "same_reflect":
            t = TF.pad(t, (pw, pw, ph, ph), mode="reflect")
        return TF.conv2d(t, w, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, vxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    if sample:
        n = kh * kw
        vx, vy, vxy = vx * n / (n - 1), vy * n / (n - 1), vxy * n / (n - 1)
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    return ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def _pair(shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.15 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


@pytest.mark.parametrize("backend", SLOW_TRITON)
@pytest.mark.parametrize("win", WINDOWS, ids=WIN_IDS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_values_match_the_definition(backend, win, padding):
    x, y = _pair((2, 3, 19, 26))
    kw = dict(win_size=win[0], win_sigma=win[1], padding=padding, backend=backend)
    want = oracle_map(x, y, *win, padding)
    torch.testing.assert_close(F.ssim(x, y, reduction="map", **kw), want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(F.ssim(x, y, reduction="per_channel", **kw), want.mean((2, 3)),
                               rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(F.ssim_loss(x, y, reduction="none", **kw), 1 - want.mean((1, 2, 3)),
                               rtol=1e-10, atol=1e-12)
    l1 = (x - y).abs().mean((1, 2, 3))
    torch.testing.assert_close(F.l1_ssim_loss(x, y, reduction="none", alpha=0.3, **kw),
                               0.7 * l1 + 0.3 * (1 - want.mean((1, 2, 3))), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", SLOW_TRITON)
def test_one_number_and_equal_pairs_are_the_same_window(backend):
    x, y = _pair((1, 2, 21, 18), torch.float32, seed=1)
    for pad in PADDINGS:
        a = F.ssim(x, y, win_size=7, win_sigma=1.2, padding=pad, reduction="map", backend=backend)
        b = F.ssim(x, y, win_size=(7, 7), win_sigma=[1.2, 1.2], padding=pad, reduction="map", backend=backend)
        assert torch.equal(a, b)
    # the axes are not interchangeable: (7, 11) on x is (11, 7) on x transposed
    a = F.ssim(x, y, win_size=(7, 11), win_sigma=(1.0, 1.5), reduction="map", backend=backend)
    b = F.ssim(x.transpose(2, 3), y.transpose(2, 3), win_size=(11, 7), win_sigma=(1.5, 1.0), reduction="map",
               backend=backend)
    torch.testing.assert_close(a, b.transpose(2, 3), rtol=1e-5, atol=1e-6)
    assert a.shape == (1, 2, 15, 8)


@pytest.mark.parametrize("backend", SLOW_TRITON)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_low_precision_and_layouts(backend, dtype, layout):
    x, y = _pair((2, 2, 17, 46), seed=2)
    xd, yd = x.to(dtype), y.to(dtype)
    if layout == "channels_last":
        xd, yd = xd.to(memory_format=torch.channels_last), yd.to(memory_format=torch.channels_last)
    elif layout == "strided":
        xd, yd = xd[..., ::2], yd[..., ::2]
    win = ((9, 5), (1.5, 1.0))
    for pad in PADDINGS:
        got = F.ssim(xd, yd, reduction="none", win_size=win[0], win_sigma=win[1], padding=pad, backend=backend)
        want = oracle_map(xd, yd, *win, pad).mean((1, 2, 3))  # the rounded inputs, in float64
        rtol, atol = tol(dtype)
        torch.testing.assert_close(got.double(), want, rtol=rtol, atol=max(atol, 1e-5))


# the reference's gradcheck takes minutes (its map backward through autograd): slow suite
@pytest.mark.parametrize("backend", [pytest.param(b, marks=pytest.mark.slow) if b == "reference" else b
                                     for b in BACKENDS if b != "triton"])
@pytest.mark.parametrize("padding", PADDINGS)
def test_gradcheck_float64(backend, padding):
    x = torch.rand(1, 1, 7, 10, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 1, 7, 10, dtype=torch.float64, requires_grad=True)
    kw = dict(win_size=(5, 7), win_sigma=(1.0, 1.5), padding=padding, backend=backend)
    assert torch.autograd.gradcheck(lambda a, b: F.ssim(a, b, **kw), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: F.ssim(a, b, reduction="map", **kw), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: F.l1_ssim_loss(a, b, reduction="none", **kw), (x, y))


@pytest.mark.parametrize("backend", SLOW_TRITON)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_gradients_match_the_definition(backend, dtype):
    x0, y0 = _pair((2, 3, 16, 35), dtype, seed=3)
    for fn, padding in ((F.ssim_loss, "valid"), (F.l1_ssim_loss, "same_zero"), (F.ssim_loss, "same_reflect")):
        for win in WINDOWS[:2]:
            x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
            fn(x, y, win_size=win[0], win_sigma=win[1], padding=padding, backend=backend).backward()
            xr, yr = x0.detach().double().clone().requires_grad_(), y0.detach().double().clone().requires_grad_()
            loss = 1 - oracle_map(xr, yr, *win, padding).mean()
            if fn is F.l1_ssim_loss:
                loss = 0.8 * (xr - yr).abs().mean() + 0.2 * loss
            loss.backward()
            rtol, atol = tol(dtype)
            scale = max(xr.grad.abs().max().item(), 1.0)
            torch.testing.assert_close(x.grad.double(), xr.grad, rtol=rtol, atol=atol * scale)
            torch.testing.assert_close(y.grad.double(), yr.grad, rtol=rtol, atol=atol * scale)


@pytest.mark.parametrize("backend", SLOW_TRITON)
def test_map_gradient_and_ms_ssim_cs_gradient(backend):
    """The map's backward (d_map) and MS-SSIM's cs backward run ssim_bwd with the per-axis window."""
    x0, y0 = _pair((1, 2, 14, 20), torch.float64, seed=4)
    win = ((3, 7), (0.8, 1.6))
    g = torch.rand(1, 2, 12, 14, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
    (F.ssim(x, y, reduction="map", win_size=win[0], win_sigma=win[1], backend=backend) * g).sum().backward()
    xr, yr = x0.clone().requires_grad_(), y0.clone().requires_grad_()
    (oracle_map(xr, yr, *win) * g).sum().backward()
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(y.grad, yr.grad, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("backend", SLOW_TRITON)
def test_ms_ssim_per_axis(backend):
    x, y = _pair((1, 2, 50, 120), torch.float64, seed=6)
    win = ((3, 11), (1.0, 1.5))
    got = F.ms_ssim(x, y, reduction="per_channel", weights=(0.5, 0.5), win_size=win[0], win_sigma=win[1],
                    backend=backend)
    ref = R.ms_ssim(x, y, win_size=win[0], win_sigma=win[1], weights=(0.5, 0.5), reduction="per_channel")
    torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-12)
    # the size rule is per axis: 5 scales of (3, 11) need 33 x 161
    assert F.ms_ssim_min_size((3, 11)) == (33, 161)
    F.ms_ssim(*_pair((1, 1, 33, 161)), win_size=(3, 11), backend=backend)
    with pytest.raises(ValueError, match="33x161"):
        F.ms_ssim(*_pair((1, 1, 32, 161)), win_size=(3, 11), backend=backend)


@pytest.mark.skipif("triton" not in BACKENDS, reason="Triton is not installed here")
def test_triton_per_axis_smoke():
    x0, y0 = _pair((1, 2, 13, 17), torch.float32, seed=9)
    win = ((7, 3), (1.2, 0.8))
    x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
    got = F.ssim_loss(x, y, win_size=win[0], win_sigma=win[1], padding="same_reflect", backend="triton")
    got.backward()
    xr, yr = x0.double().requires_grad_(), y0.double().requires_grad_()
    want = 1 - oracle_map(xr, yr, *win, "same_reflect").mean()
    want.backward()
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad.double(), xr.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(y.grad.double(), yr.grad, rtol=1e-4, atol=1e-6)


def test_op_schema_takes_one_entry_per_axis():
    x, y = _pair((1, 1, 12, 12), torch.float32)
    for backend in BACKENDS:
        op = overload("ssim_fwd", backend)
        with pytest.raises((RuntimeError, ValueError), match="win_size|axis|axes"):
            op(x, y, [7], [1.5], 1e-4, 9e-4, 0, 0, 0, 0.0, False, False)


def test_torchmetrics_kernel_size_and_sigma_sequences():
    """torchmetrics (>= 1.4.2: reflect padding, no crop) with sequences of one entry per axis,
    (H, W) in that order: its Gaussian window has int(3.5 sigma + 0.5) * 2 + 1 taps per axis
    whatever kernel_size says (9 for sigma 1.0, 15 for 2.0), its uniform one kernel_size."""
    tm = pytest.importorskip("torchmetrics.functional.image")
    x, y = _pair((2, 3, 40, 47), torch.float64, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = tm.structural_similarity_index_measure(x, y, data_range=1.0, kernel_size=(9, 15), sigma=(1.0, 2.0))
        want_u = tm.structural_similarity_index_measure(x, y, data_range=1.0, kernel_size=(7, 11),
                                                        gaussian_kernel=False)
    torch.testing.assert_close(F.ssim(x, y, win_size=(9, 15), win_sigma=(1.0, 2.0), padding="same_reflect"), want,
                               rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(F.ssim(x, y, win_size=(7, 11), window="uniform", padding="same_reflect"), want_u,
                               rtol=1e-9, atol=1e-12)


def test_modules_sample_covariance_and_bad_arguments():
    x, y = _pair((1, 3, 20, 30), torch.float32, seed=8)
    kw = dict(win_size=(5, 9), win_sigma=(1.0, 2.0))
    torch.testing.assert_close(N.SSIMLoss(**kw)(x, y), F.ssim_loss(x, y, **kw))
    torch.testing.assert_close(N.L1SSIMLoss(**kw)(x, y), F.l1_ssim_loss(x, y, **kw))
    torch.testing.assert_close(N.MSSSIMLoss(win_size=(3, 5), weights=(0.5, 0.5))(x, y),
                               1 - F.ms_ssim(x, y, win_size=(3, 5), weights=(0.5, 0.5)))
    assert "win_size=(5, 9)" in repr(N.SSIMLoss(**kw))
    # sample covariance: N = 5 * 9, the window's pixel count
    got = F.ssim(x.double(), y.double(), reduction="map", use_sample_covariance=True, **kw)
    torch.testing.assert_close(got, oracle_map(x, y, (5, 9), (1.0, 2.0), sample=True), rtol=1e-10, atol=1e-12)
    # uniform: every weight 1 / size on each axis, sigma ignored
    torch.testing.assert_close(F.ssim(x.double(), y.double(), window="uniform", reduction="map", **kw),
                               oracle_map(x, y, (5, 9), (float("inf"),) * 2), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="win_size"):
        F.ssim(x, y, win_size=(5, 9, 3))
    with pytest.raises(ValueError, match="win_size"):
        F.ssim(x, y, win_size=(5, 8))
    with pytest.raises(TypeError, match=r"win_size\[1\]"):
        F.ssim(x, y, win_size=(5, 2.5))
    with pytest.raises(ValueError, match=r"win_sigma\[0\]"):
        F.ssim(x, y, win_sigma=(0.0, 1.5))
    with pytest.raises(ValueError, match="win_sigma"):
        N.SSIMLoss(win_sigma=[1.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="smaller than the 21x3 window"):
        F.ssim(x, y, win_size=(21, 3))
