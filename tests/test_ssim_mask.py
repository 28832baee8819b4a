"""Masked SSIM (issue 19 item 3): ssim / ssim_loss / l1_ssim_loss with mask= and nan_policy= in every
backend against a float64 oracle written here (one N-D window, not separable; explicit padding; the
normalised convolutions of the issue; autograd for the gradients): values and both gradients, every
padding and reduction, bool / float and (N, 1) / (N, C) masks, dtypes, layouts, volumes, the rules
(zero gradient where m = 0, NaN for an empty weight set, 0 in the map where W = 0, nan_policy) and
the argument errors."""

import pytest
import torch

import fastiqa.functional as F
import fastiqa.nn as fnn
from fastiqa import _ext
from fastiqa.ops import _dispatch

PADDINGS = ("valid", "same_zero", "same_reflect")
REDUCTIONS = ("mean", "none", "per_channel", "map")
TRITON = _dispatch.triton_installed() and _dispatch.triton_interpreted()
# interpreted Triton is slow: every case in the slow suite, a fast subset in test_triton_fast
BACKENDS = ["reference"] + (["cpu"] if _ext.has_kernel("ssim_masked_fwd", "CPU") else []) + (
    [pytest.param("triton", marks=pytest.mark.slow)] if TRITON else [])


def _window(win_size, win_sigma, axes, window="gaussian"):
    sizes = win_size if isinstance(win_size, (tuple, list)) else (win_size,) * axes
    sigmas = win_sigma if isinstance(win_sigma, (tuple, list)) else (win_sigma,) * axes
    full = torch.ones((), dtype=torch.float64)
    for k, s in zip(sizes, sigmas):
        c = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
        g = torch.ones(k, dtype=torch.float64) if window == "uniform" else torch.exp(-c * c / (2 * s * s))
        full = full[..., None] * (g / g.sum())
    return full, [k // 2 for k in sizes]


def _conv(t, w):
    c = t.shape[1]
    kernel = w.expand(c, 1, *w.shape)
    conv = torch.nn.functional.conv2d if t.dim() == 4 else torch.nn.functional.conv3d
    return conv(t, kernel, groups=c)


def oracle_terms(x, y, m, win_size=11, win_sigma=1.5, padding="valid", data_range=1.0, k1=0.01, k2=0.03,
                 window="gaussian", use_sample_covariance=False):
    """(S map with 0 where W = 0, m_c, W) in float64 from the issue's formula."""
    x, y, m = x.double(), y.double(), m.double().expand(x.shape)
    w, rs = _window(win_size, win_sigma, x.dim() - 2, window)
    w = w.to(x.device)
    if padding != "valid":
        pads = [p for r in reversed(rs) for p in (r, r)]
        if padding == "same_reflect":
            x, y, mp = (torch.nn.functional.pad(t, pads, mode="reflect") for t in (x, y, m))
        else:
            x, y = (torch.nn.functional.pad(t, pads) for t in (x, y))
            mp = torch.nn.functional.pad(m, pads, value=1.0)
    else:
        mp = m
    big_w = _conv(mp, w)
    ok = big_w > 0
    ws = torch.where(ok, big_w, torch.ones_like(big_w))
    mx, my = _conv(mp * x, w) / ws, _conv(mp * y, w) / ws
    sxx = _conv(mp * x * x, w) / ws - mx * mx
    syy = _conv(mp * y * y, w) / ws - my * my
    sxy = _conv(mp * x * y, w) / ws - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    if use_sample_covariance:
        n = w.numel()
        sxx, syy, sxy = sxx * n / (n - 1), syy * n / (n - 1), sxy * n / (n - 1)
    s = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    s = torch.where(ok, s, torch.zeros_like(s))
    m_c = m
    if padding == "valid":
        for axis, r in enumerate(rs):
            m_c = m_c.narrow(2 + axis, r, m.shape[2 + axis] - 2 * r)
    return s, m_c, big_w


def _ratio(a, b):
    return torch.where(b > 0, a / torch.where(b > 0, b, torch.ones_like(b)), torch.full_like(a, float("nan")))


def oracle(x, y, m, reduction="mean", output="ssim", alpha=0.2, **kw):
    s, m_c, _ = oracle_terms(x, y, m, **kw)
    if reduction == "map":
        return s
    dims = {"per_channel": tuple(range(2, s.dim())), "none": tuple(range(1, s.dim())),
            "mean": tuple(range(s.dim()))}[reduction]
    m_full = m.double().expand(x.shape)
    value = _ratio((m_c * s).sum(dims), m_c.expand(s.shape).sum(dims))
    if output == "ssim":
        return value
    if output == "ssim_loss":
        return 1 - value
    l1 = _ratio((m_full * (x.double() - y.double()).abs()).sum(dims), m_full.sum(dims))
    return (1 - alpha) * l1 + alpha * (1 - value)


def pair(shape, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, dtype=torch.float64, generator=gen)
    y = (x + 0.2 * torch.randn(shape, dtype=torch.float64, generator=gen)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


def make_mask(shape, kind, seed=3):
    """kind: "bool" / "float" (N, C, ...) or "bool1" / "float1" (N, 1, ...); about a third zeros."""
    gen = torch.Generator().manual_seed(seed)
    shape = (shape[0], 1, *shape[2:]) if kind.endswith("1") else shape
    r = torch.rand(shape, dtype=torch.float64, generator=gen)
    if kind.startswith("bool"):
        return r > 0.35
    return torch.where(r > 0.35, r * 2, torch.zeros_like(r))


FNS = {"ssim": F.ssim, "ssim_loss": F.ssim_loss, "l1_ssim": F.l1_ssim_loss}


def run(output, x, y, mask, reduction, backend, **kw):
    kwargs = dict(kw, mask=mask, reduction=reduction, backend=backend)
    if output == "l1_ssim":
        kwargs.setdefault("padding", "same_zero")
    return FNS[output](x, y, **kwargs)


def check(x, y, mask, reduction, backend, output="ssim", vtol=(1e-10, 1e-12), gtol=(1e-9, 1e-11), **kw):
    """Value and both gradients of a random linear function of the output against the oracle."""
    if output == "l1_ssim":
        kw.setdefault("padding", "same_zero")
    xr, yr = x.detach().double().requires_grad_(), y.detach().double().requires_grad_()
    ref = oracle(xr, yr, mask, reduction, output, **kw)
    go = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    rgx, rgy = torch.autograd.grad((ref * go).sum(), (xr, yr))
    xf, yf = x.detach().clone().requires_grad_(), y.detach().clone().requires_grad_()
    out = run(output, xf, yf, mask, reduction, backend, **kw)
    assert out.shape == ref.shape
    torch.testing.assert_close(out.double(), ref.detach(), rtol=vtol[0], atol=vtol[1])
    gx, gy = torch.autograd.grad((out * go.to(out.dtype)).sum(), (xf, yf))
    assert gx.dtype == x.dtype and gx.shape == x.shape
    torch.testing.assert_close(gx.double(), rgx, rtol=gtol[0], atol=gtol[1])
    torch.testing.assert_close(gy.double(), rgy, rtol=gtol[0], atol=gtol[1])
    return out, gx, gy, rgx


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind", ["bool1", "float"])
def test_ssim_matches_oracle(backend, padding, reduction, kind):
    x, y = pair((2, 3, 19, 22))
    check(x, y, make_mask(x.shape, kind), reduction, backend, padding=padding, win_size=7)


@pytest.mark.skipif(not TRITON, reason="triton not installed or not interpreted here")
@pytest.mark.parametrize("padding", PADDINGS)
def test_triton_fast(padding):
    """The Triton kernels (interpreted): float32 values and gradients, map and mean, a float (N, C) mask.
    Tolerances: windows with little weight (the hole's rim) cost float32 ~1e-4 in every backend,
    the float32 reference included."""
    x, y = pair((1, 2, 13, 12), seed=17)
    m = make_mask(x.shape, "float")
    m[0, 0, 2:10, 2:10] = 0  # a hole wider than the window
    for red in ("map", "mean"):
        check(x.float(), y.float(), m, red, "triton", vtol=(1e-3, 1e-3), gtol=(1e-2, 1e-3), padding=padding,
              win_size=3)


@pytest.mark.skipif(not TRITON, reason="triton not installed or not interpreted here")
@pytest.mark.parametrize("padding", [pytest.param(p, marks=pytest.mark.slow) if p != "same_zero" else p
                                     for p in PADDINGS])
def test_triton_volume_fast(padding):
    """The Triton volume path (interpreted; fastiqa/backends/triton/ssim_masked.py _volume_fwd /
    _volume_bwd): float32 values and both gradients of the L1 + SSIM loss and the map, per-axis
    window, a float (N, 1) mask with a hole, against the oracle."""
    x, y = pair((1, 2, 7, 12, 11), seed=19)
    m = make_mask(x.shape, "float1")
    m[0, 0, 2:5, 3:9, 3:8] = 0
    kw = dict(padding=padding, win_size=(3, 5, 5), win_sigma=(1.0, 1.5, 1.5))
    check(x.float(), y.float(), m, "mean", "triton", output="l1_ssim", vtol=(1e-3, 1e-3), gtol=(1e-2, 1e-3), **kw)
    check(x.float(), y.float(), m, "map", "triton", vtol=(1e-3, 1e-3), gtol=(1e-2, 1e-3), **kw)


@pytest.mark.skipif(not TRITON, reason="triton not installed or not interpreted here")
@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_triton_volume_low_precision(dtype):
    """Low-precision volumes (loads converted to float32): per-channel SSIM and its gradients."""
    x, y = pair((1, 2, 6, 9, 10), seed=23)
    m = make_mask(x.shape, "bool1")
    check(x.to(dtype), y.to(dtype), m, "per_channel", "triton", vtol=(2e-2, 2e-2), gtol=(5e-2, 2e-2),
          padding="same_reflect", win_size=3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("output", ["ssim_loss", "l1_ssim"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("padding", ["valid", "same_zero", "same_reflect"])
def test_losses_match_oracle(backend, output, reduction, padding):
    x, y = pair((2, 2, 17, 16), seed=1)
    check(x, y, make_mask(x.shape, "float1"), reduction, backend, output=output, padding=padding, win_size=5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_volume_matches_oracle(backend, padding):
    x, y = pair((1, 2, 9, 10, 11), seed=2)
    check(x, y, make_mask(x.shape, "bool1"), "per_channel", backend, padding=padding, win_size=(3, 5, 5),
          win_sigma=(1.0, 1.5, 1.5))
    check(x, y, make_mask(x.shape, "float"), "map", backend, padding=padding, win_size=3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_windows_options_match_oracle(backend):
    x, y = pair((2, 1, 15, 18), seed=4)
    m = make_mask(x.shape, "float")
    check(x, y, m, "none", backend, window="uniform", win_size=7, use_sample_covariance=True)
    check(x, y, m, "map", backend, win_size=(5, 9), win_sigma=(1.0, 2.0), padding="same_reflect")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["mean", "map"])
def test_low_precision(backend, dtype, reduction):
    x, y = pair((2, 3, 20, 17), seed=5)
    x, y = x.to(dtype), y.to(dtype)
    m = make_mask(x.shape, "float1")
    vtol = (1e-4, 1e-5) if dtype == torch.float32 else (3e-2, 3e-2)
    out, gx, _, rgx = check(x, y, m, reduction, backend, vtol=vtol, gtol=(1.0, 1.0), padding="same_zero",
                            win_size=7)
    assert out.dtype == (dtype if reduction == "map" else torch.float32)
    rel = ((gx.double() - rgx).norm() / rgx.norm()).item()  # the gradient as a whole, relative
    assert rel < (1e-4 if dtype == torch.float32 else 3e-2), rel


@pytest.mark.parametrize("backend", BACKENDS)
def test_layouts(backend):
    """channels_last images, a strided mask, and the map keeps channels_last."""
    x, y = pair((2, 3, 16, 21), seed=6)
    xc, yc = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
    big = make_mask((2, 3, 32, 21), "float")
    m = big[:, :, ::2]
    assert not m.is_contiguous()
    out, gx, _, _ = check(xc, yc, m, "map", backend, padding="same_reflect", win_size=5)
    assert out.is_contiguous(memory_format=torch.channels_last)
    xs, ys = pair((2, 3, 16, 42), seed=6)
    check(xs[..., ::2], ys[..., ::2], m, "per_channel", backend, win_size=5)


@pytest.mark.skipif("cpu" not in BACKENDS, reason="the compiled CPU kernels are not built")
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("reduction", ["per_channel", "map"])
def test_cpu_bands_strips_and_threads(padding, reduction):
    """Images taller than a band and wider than a column strip (csrc/cpu/ssim_masked_band.h: bands
    of 64 to 256 rows, strips of 32 to 80 columns), odd sizes, a (N, C) float mask: against the
    oracle, and bitwise the same with 1 and 3 threads (bands never follow the thread count)."""
    x, y = pair((1, 2, 203, 301), seed=11)
    m = make_mask(x.shape, "float")
    check(x, y, m, reduction, "cpu", padding=padding)
    x32, y32 = x.float(), y.float()
    threads, results = torch.get_num_threads(), []
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            xf, yf = x32.clone().requires_grad_(), y32.clone().requires_grad_()
            out = F.ssim(xf, yf, mask=m, reduction=reduction, padding=padding, backend="cpu")
            loss = F.l1_ssim_loss(xf, yf, mask=m, reduction="none", padding=padding, backend="cpu")
            (out.sum() + loss.sum()).backward()
            results.append((out.detach(), loss.detach(), xf.grad, yf.grad))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)
    assert results[0][2].abs().sum() > 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_all_ones_mask_is_unmasked(backend, padding):
    for dtype, (rtol, atol) in ((torch.float64, (1e-12, 1e-13)), (torch.float32, (2e-5, 2e-6))):
        x, y = pair((2, 3, 18, 19), dtype, seed=8)
        for m in (torch.ones((2, 1, 18, 19), dtype=torch.bool), torch.ones((2, 3, 18, 19), dtype=dtype)):
            for red in ("none", "map"):
                a = F.ssim(x, y, reduction=red, padding=padding, mask=m, backend=backend, win_size=7)
                b = F.ssim(x, y, reduction=red, padding=padding, backend="reference", win_size=7)
                torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_gradient_exactly_zero_where_masked(backend, padding):
    x, y = pair((2, 2, 20, 20), seed=9)
    m = make_mask(x.shape, "bool1")
    x = torch.where(m, x, torch.full_like(x, 1e6)).requires_grad_()  # garbage under the mask must not matter
    y = y.clone().requires_grad_()
    for fn in (F.ssim_loss, F.l1_ssim_loss):
        gx, gy = torch.autograd.grad(fn(x, y, mask=m, padding=padding, backend=backend, win_size=5), (x, y))
        off = ~m.expand(x.shape)
        assert torch.all(gx[off] == 0) and torch.all(gy[off] == 0)
        assert torch.isfinite(gx).all() and gx[~off].abs().sum() > 0
    clean = torch.where(m, x.detach(), torch.zeros_like(x))
    a = F.ssim(x, y, mask=m, padding=padding, backend=backend, win_size=5)
    b = F.ssim(clean, y, mask=m, padding=padding, backend=backend, win_size=5)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_map_is_zero_where_no_weight_and_empty_sets_are_nan(backend):
    x, y = pair((2, 2, 24, 24), seed=10)
    m = torch.ones((2, 2, 24, 24), dtype=torch.bool)
    m[:, :, 4:20, 4:20] = False  # a hole wider than the window: W = 0 inside
    m[1, 1] = False              # an empty plane
    xg, yg = x.clone().requires_grad_(), y.clone().requires_grad_()
    s_map = F.ssim(xg, yg, reduction="map", mask=m, backend=backend, win_size=5, padding="same_reflect")
    assert torch.all(s_map[:, :, 8:16, 8:16] == 0) and torch.all(s_map[1, 1] == 0)
    ref = oracle(x, y, m, "map", win_size=5, padding="same_reflect")
    torch.testing.assert_close(s_map.double(), ref, rtol=1e-10, atol=1e-12)
    pc = F.ssim(xg, yg, reduction="per_channel", mask=m, backend=backend, win_size=5, padding="same_reflect")
    assert torch.isnan(pc[1, 1]) and torch.isfinite(pc[0]).all() and torch.isfinite(pc[1, 0])
    gx, gy = torch.autograd.grad(pc.nan_to_num().sum(), (xg, yg))
    assert torch.isfinite(gx).all() and torch.all(gx[1, 1] == 0) and torch.all(gy[1, 1] == 0)
    mean = F.ssim(x, y, reduction="mean", mask=m, backend=backend, win_size=5, padding="same_reflect")
    torch.testing.assert_close(mean.double(), oracle(x, y, m, "mean", win_size=5, padding="same_reflect"))
    empty = F.ssim(x, y, mask=torch.zeros_like(m), backend=backend, win_size=5)
    assert torch.isnan(empty)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_policy_omit(backend, bad):
    x, y = pair((2, 3, 18, 18), seed=11)
    m = make_mask(x.shape, "float1")
    xn = x.clone()
    xn[0, 1, 3, 5] = bad
    xn[1, :, 10:12, 7] = bad
    yn = y.clone()
    yn[0, 0, 9, 9] = bad
    ok = torch.isfinite(xn) & torch.isfinite(yn)
    assert torch.isnan(F.ssim(xn, yn, mask=m, backend=backend, win_size=5))  # propagate: NaN in, NaN out
    xg, yg = xn.clone().requires_grad_(), yn.clone().requires_grad_()
    out = F.ssim(xg, yg, mask=m, nan_policy="omit", reduction="none", backend=backend, win_size=5,
                 padding="same_zero")
    ref = oracle(torch.where(ok, xn, 0), torch.where(ok, yn, 0), m * ok, "none", win_size=5, padding="same_zero")
    torch.testing.assert_close(out.double(), ref, rtol=1e-10, atol=1e-12)
    gx, gy = torch.autograd.grad(out.sum(), (xg, yg))
    assert torch.isfinite(gx).all() and torch.isfinite(gy).all()
    assert torch.all(gx[~ok] == 0) and torch.all(gy[~ok] == 0)
    # no mask: every finite pixel weighs 1
    out2 = F.l1_ssim_loss(xn, yn, nan_policy="omit", backend=backend, win_size=5)
    ref2 = oracle(torch.where(ok, xn, 0), torch.where(ok, yn, 0), ok, "mean", "l1_ssim", win_size=5,
                  padding="same_zero")
    torch.testing.assert_close(out2.double(), ref2, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck(backend):
    x, y = pair((1, 2, 9, 10), seed=12)
    m = make_mask(x.shape, "float1")
    x.requires_grad_()
    y.requires_grad_()
    for red in ("none", "map"):
        assert torch.autograd.gradcheck(
            lambda a, b: F.ssim(a, b, mask=m, reduction=red, backend=backend, win_size=3, padding="same_reflect"),
            (x, y))


def test_double_backward_is_the_reference_gradient():
    x, y = pair((1, 1, 10, 10), seed=13)
    m = make_mask(x.shape, "float")
    x.requires_grad_()
    g, = torch.autograd.grad(F.ssim_loss(x, y, mask=m, win_size=3), x, create_graph=True)
    assert g.requires_grad
    assert torch.autograd.gradgradcheck(lambda a: F.ssim(a, y, mask=m, win_size=3, backend="reference"), (x,))


def test_modules_take_the_mask():
    x, y = pair((2, 3, 16, 16), seed=14)
    m = make_mask(x.shape, "bool1")
    torch.testing.assert_close(fnn.SSIMLoss(win_size=5)(x, y, m), F.ssim_loss(x, y, mask=m, win_size=5))
    torch.testing.assert_close(fnn.L1SSIMLoss(win_size=5, nan_policy="omit")(x, y, m),
                               F.l1_ssim_loss(x, y, mask=m, win_size=5, nan_policy="omit"))
    assert "nan_policy='omit'" in repr(fnn.L1SSIMLoss(nan_policy="omit"))


def test_errors_name_the_argument():
    x, y = pair((2, 3, 16, 16))
    m = torch.ones((2, 1, 16, 16), dtype=torch.bool)
    cases = [
        (ValueError, "mask", dict(mask=torch.ones((2, 2, 16, 16), dtype=torch.bool))),
        (ValueError, "mask", dict(mask=torch.ones((2, 1, 16, 15), dtype=torch.bool))),
        (ValueError, "mask", dict(mask=torch.ones((1, 1, 16, 16), dtype=torch.bool))),
        (ValueError, "mask", dict(mask=-torch.ones((2, 1, 16, 16)))),
        (ValueError, "mask", dict(mask=torch.full((2, 1, 16, 16), float("nan")))),
        (ValueError, "mask", dict(mask=torch.ones((2, 1, 16, 16), device="meta"))),
        (TypeError, "mask", dict(mask=torch.ones((2, 1, 16, 16), dtype=torch.int64))),
        (TypeError, "mask", dict(mask=[[1.0]])),
        (ValueError, "mask", dict(mask=torch.ones((2, 1, 16, 16), requires_grad=True))),
        (ValueError, "nan_policy", dict(nan_policy="raise")),
        (ValueError, "mask", dict(mask=m, downsample=2)),
    ]
    for exc, word, kw in cases:
        with pytest.raises(exc, match=word):
            F.ssim(x, y, win_size=5, **kw)
    with pytest.raises(ValueError, match="mask"):
        F.ms_ssim(x, y, mask=m)
    with pytest.raises(ValueError, match="mask"):
        F.ms_ssim(x, y, nan_policy="omit")
    with pytest.raises(ValueError, match="nan_policy"):
        fnn.SSIMLoss(nan_policy="drop")


@pytest.mark.parametrize("backend", BACKENDS)
def test_opcheck(backend):
    """Schema, fake kernel and autograd registration of both ops agree with the kernels."""
    x, y = pair((2, 2, 9, 8), seed=15)
    m = make_mask(x.shape, "float1").expand(x.shape)
    x.requires_grad_()
    packet = torch.ops.fastiqa_C.ssim_masked_fwd
    fwd = packet.default if backend == "cpu" else packet.reference
    for padding, want_map in ((0, True), (2, False)):
        torch.library.opcheck(fwd, (x, y, m, [3, 3], [1.5, 1.5], 1e-4, 9e-4, padding, want_map))
    bpacket = torch.ops.fastiqa_C.ssim_masked_bwd
    bwd = bpacket.default if backend == "cpu" else bpacket.reference
    d_planes = torch.randn((2, 2, 4), dtype=torch.float64)
    torch.library.opcheck(bwd, (x.detach(), y, m, [3, 3], [1.5, 1.5], 1e-4, 9e-4, 1, d_planes, None, True, True))


@pytest.mark.slow
def test_compiled_matches_eager():
    x, y = pair((2, 3, 14, 15), seed=16)
    m = make_mask(x.shape, "bool1")
    fn = torch.compile(lambda a, b, w: F.ssim_loss(a, b, mask=w, win_size=5, padding="same_reflect"), fullgraph=True)
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    a = fn(xa, y, m)
    b = F.ssim_loss(xb, y, mask=m, win_size=5, padding="same_reflect")
    torch.testing.assert_close(a, b)
    ga, = torch.autograd.grad(a, xa)
    gb, = torch.autograd.grad(b, xb)
    torch.testing.assert_close(ga, gb)
