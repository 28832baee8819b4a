"""SSIM windows and covariance (issue 19 item 2, without per-axis windows): window="uniform"
and use_sample_covariance=True on the SSIM family, every backend here, against a float64
oracle written here from the definition (an explicit 2-D window, variances and covariance
times N / (N - 1)); gradients by gradcheck and against the oracle's autograd. The
equality with scikit-image's defaults is in tests/test_ssim_peers.py."""

import pytest
import torch
import torch.nn.functional as TF

import fastiqa.functional as F
import fastiqa.nn as N

from support import cpu_backends, tol

BACKENDS = cpu_backends("ssim")


def _slow_for(*names):
    return [pytest.param(b, marks=pytest.mark.slow) if b in names else b for b in BACKENDS]


def oracle_map(x, y, win_size=7, window="uniform", sigma=1.5, sample=False, padding="valid", r=1.0):
    """The SSIM map by its definition, float64: 2-D window w (uniform: 1 / win_size^2;
    gaussian: the outer product of exp(-k^2 / (2 sigma^2)), normalised), statistics
    mu = w * x, sigma_x^2 = w * x^2 - mu_x^2, sigma_xy = w * xy - mu_x mu_y, the three
    second moments times N / (N - 1) when sample (N = win_size^2)."""
    x, y = x.double(), y.double()
    c = x.shape[1]
    if window == "uniform":
        w2 = torch.full((win_size, win_size), 1.0 / win_size ** 2, dtype=torch.float64)
    else:
        k = torch.arange(win_size, dtype=torch.float64) - (win_size - 1) / 2
        g = torch.exp(-k * k / (2 * sigma * sigma))
        w2 = torch.outer(g, g) / torch.outer(g, g).sum()
    w = w2.expand(c, 1, win_size, win_size)
    p = win_size // 2

    def blur(t):
        if padding == "same_zero":
            t = TF.pad(t, (p, p, p, p))
        elif padding == "same_reflect":
            t = TF.pad(t, (p, p, p, p), mode="reflect")
        return TF.conv2d(t, w, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, vxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    if sample:
        n = win_size * win_size
        vx, vy, vxy = vx * n / (n - 1), vy * n / (n - 1), vxy * n / (n - 1)
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    return ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def _pair(shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.15 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


CASES = [("uniform", False), ("uniform", True), ("gaussian", True)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("window,sample", CASES, ids=["uniform", "uniform-sample", "gaussian-sample"])
@pytest.mark.parametrize("padding", ["valid", "same_zero", "same_reflect"])
def test_values_match_the_definition(backend, window, sample, padding):
    x, y = _pair((2, 3, 19, 26))
    kw = dict(win_size=7, window=window, use_sample_covariance=sample, padding=padding, backend=backend)
    want = oracle_map(x, y, 7, window, 1.5, sample, padding)
    torch.testing.assert_close(F.ssim(x, y, reduction="map", **kw), want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(F.ssim(x, y, reduction="none", **kw), want.mean((1, 2, 3)), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(F.ssim_loss(x, y, reduction="none", **kw), 1 - want.mean((1, 2, 3)),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_low_precision_and_layouts(backend, dtype, layout):
    x, y = _pair((2, 2, 17, 23), seed=1)
    xd, yd = x.to(dtype), y.to(dtype)
    if layout == "channels_last":
        xd, yd = xd.to(memory_format=torch.channels_last), yd.to(memory_format=torch.channels_last)
    got = F.ssim(xd, yd, reduction="none", win_size=5, window="uniform", use_sample_covariance=True, backend=backend)
    want = oracle_map(xd, yd, 5, "uniform", sample=True).mean((1, 2, 3))  # the rounded inputs, in float64
    rtol, atol = tol(dtype)
    torch.testing.assert_close(got.double(), want, rtol=rtol, atol=max(atol, 1e-5))


def test_uniform_ignores_sigma_and_sample_covariance_only_touches_cs():
    x, y = _pair((1, 2, 15, 16), seed=2)
    a = F.ssim(x, y, window="uniform", win_size=5, win_sigma=0.3)
    assert torch.equal(a, F.ssim(x, y, window="uniform", win_size=5, win_sigma=7.0))
    assert not torch.allclose(a, F.ssim(x, y, win_size=5, win_sigma=0.3))
    s_pop = F.ssim(x, y, window="uniform", win_size=5)
    s_smp = F.ssim(x, y, window="uniform", win_size=5, use_sample_covariance=True)
    assert abs(s_pop - s_smp) > 1e-6  # C2 (N - 1) / N instead of C2: small, far above rounding
    # identical images stay exactly 1 either way
    assert F.ssim(x, x.clone(), window="uniform", win_size=5, use_sample_covariance=True).item() == pytest.approx(1.0)


@pytest.mark.parametrize("backend", [b for b in _slow_for("reference") if b != "triton"])
@pytest.mark.parametrize("window,sample", CASES, ids=["uniform", "uniform-sample", "gaussian-sample"])
def test_gradcheck_float64(backend, window, sample):
    x = torch.rand(1, 1, 9, 10, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 1, 9, 10, dtype=torch.float64, requires_grad=True)
    kw = dict(win_size=5, window=window, use_sample_covariance=sample, backend=backend)
    assert torch.autograd.gradcheck(lambda a, b: F.ssim(a, b, **kw), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: F.ssim(a, b, reduction="map", padding="same_reflect", **kw), (x, y))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_match_the_definition(backend):
    x0, y0 = _pair((2, 3, 16, 21), torch.float32, seed=3)
    for fn in (F.ssim_loss, F.l1_ssim_loss):
        x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
        padding = "same_zero" if fn is F.l1_ssim_loss else "valid"
        fn(x, y, win_size=7, window="uniform", use_sample_covariance=True, padding=padding, backend=backend).backward()
        xr, yr = x0.double().requires_grad_(), y0.double().requires_grad_()
        loss = 1 - oracle_map(xr, yr, 7, "uniform", sample=True, padding=padding).mean()
        if fn is F.l1_ssim_loss:
            loss = 0.8 * (xr - yr).abs().mean() + 0.2 * loss
        loss.backward()
        rtol, atol = tol(torch.float32)
        scale = max(xr.grad.abs().max().item(), 1.0)
        torch.testing.assert_close(x.grad.double(), xr.grad, rtol=rtol, atol=atol * scale)
        torch.testing.assert_close(y.grad.double(), yr.grad, rtol=rtol, atol=atol * scale)


@pytest.mark.parametrize("backend", _slow_for("triton"))
def test_ms_ssim_takes_the_options_at_every_scale(backend):
    x, y = _pair((1, 2, 100, 103), torch.float64, seed=4)
    kw = dict(win_size=7, window="uniform", use_sample_covariance=True)
    got = F.ms_ssim(x, y, reduction="per_channel", weights=(0.5, 0.5), backend=backend, **kw)
    # two scales: cs of the first (its own window), S of the 2x2-pooled second
    m0 = oracle_map(x, y, 7, "uniform", sample=True)  # cs = the map divided by the luminance term
    xd, yd = x.double(), y.double()
    w = torch.full((2, 1, 7, 7), 1 / 49, dtype=torch.float64)
    mx, my = TF.conv2d(xd, w, groups=2), TF.conv2d(yd, w, groups=2)
    lum = (2 * mx * my + 1e-4) / (mx * mx + my * my + 1e-4)
    cs0 = (m0 / lum).mean((2, 3))
    s1 = oracle_map(TF.avg_pool2d(TF.pad(x, (1, 1, 0, 0)), 2), TF.avg_pool2d(TF.pad(y, (1, 1, 0, 0)), 2), 7,
                    "uniform", sample=True).mean((2, 3))
    torch.testing.assert_close(got, cs0.clamp(min=0) ** 0.5 * s1.clamp(min=0) ** 0.5, rtol=1e-9, atol=1e-12)


def test_modules_and_bad_arguments():
    x, y = _pair((1, 3, 20, 22), torch.float32, seed=5)
    kw = dict(win_size=7, window="uniform", use_sample_covariance=True)
    torch.testing.assert_close(N.SSIMLoss(**kw)(x, y), F.ssim_loss(x, y, **kw))
    torch.testing.assert_close(N.L1SSIMLoss(**kw)(x, y), F.l1_ssim_loss(x, y, **kw))
    assert "window='uniform'" in repr(N.SSIMLoss(**kw)) and "use_sample_covariance=True" in repr(N.SSIMLoss(**kw))
    with pytest.raises(ValueError, match="window"):
        F.ssim(x, y, window="box")
    with pytest.raises(ValueError, match="window"):
        N.MSSSIMLoss(window="box")
    with pytest.raises(TypeError, match="use_sample_covariance"):
        F.ssim(x, y, use_sample_covariance=1)
    with pytest.raises(TypeError, match="use_sample_covariance"):
        N.SSIMLoss(use_sample_covariance="yes")
    assert F.SSIM_WINDOWS == ("gaussian", "uniform")
