"""ssim(..., mask=..., return_components=True) (issue 19 items 3 + 4): luminance, contrast and structure of
the normalised statistics, reduced with the masked SSIM's weights m_c, against a float64 oracle written here
(conv2d with the explicit 2-D window; sigma = sqrt(max(variance, 0)) with a zero derivative at 0), values and
both gradients, every padding and reduction, and the rules (S equals the masked SSIM, an all-ones mask equals
the unmasked components)."""

import pytest
import torch

import fastiqa.functional as F
from fastiqa import _ext

PADDINGS = ("valid", "same_zero", "same_reflect")
BACKENDS = ["reference"] + (["cpu"] if _ext.has_kernel("ssim_masked_components_fwd", "CPU") else [])


def _oracle(x, y, m, reduction, padding, win=7, sigma=1.5, c1=1e-4, c2=9e-4):
    x, y, m = x.double(), y.double(), m.double().expand(x.shape)
    c = torch.arange(win, dtype=torch.float64) - (win - 1) / 2
    g = torch.exp(-c * c / (2 * sigma * sigma))
    w = (g / g.sum())[:, None] * (g / g.sum())[None, :]
    r = win // 2
    if padding == "same_reflect":
        x, y, mp = (torch.nn.functional.pad(t, [r] * 4, mode="reflect") for t in (x, y, m))
    elif padding == "same_zero":
        x, y = (torch.nn.functional.pad(t, [r] * 4) for t in (x, y))
        mp = torch.nn.functional.pad(m, [r] * 4, value=1.0)
    else:
        mp = m

    def conv(t):
        return torch.nn.functional.conv2d(t, w.expand(t.shape[1], 1, win, win), groups=t.shape[1])

    big_w = conv(mp)
    ok = big_w > 0
    ws = torch.where(ok, big_w, torch.ones_like(big_w))
    mx, my = conv(mp * x) / ws, conv(mp * y) / ws
    sxx, syy = conv(mp * x * x) / ws - mx * mx, conv(mp * y * y) / ws - my * my
    sxy = conv(mp * x * y) / ws - mx * my

    def root(v):
        return torch.where(v > 0, torch.where(v > 0, v, torch.ones_like(v)).sqrt(), torch.zeros_like(v))

    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    con = (2 * root(sxx) * root(syy) + c2) / (sxx + syy + c2)
    st = (sxy + c2 / 2) / (root(sxx) * root(syy) + c2 / 2)
    maps = [torch.where(ok, t, torch.zeros_like(t)) for t in (lum * con * st, lum, con, st)]
    if reduction == "map":
        return maps
    m_c = m if padding != "valid" else m[..., r:-r, r:-r]
    dims = {"per_channel": (2, 3), "none": (1, 2, 3), "mean": (0, 1, 2, 3)}[reduction]
    return [(m_c * t).sum(dims) / m_c.sum(dims) for t in maps]


def _pair(shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, dtype=torch.float64, generator=gen)
    y = (x + 0.2 * torch.randn(shape, dtype=torch.float64, generator=gen)).clamp(0, 1)
    gen = torch.Generator().manual_seed(seed + 1)
    m = torch.rand((shape[0], 1, *shape[2:]), dtype=torch.float64, generator=gen)
    return x, y, torch.where(m > 0.3, 2 * m, torch.zeros_like(m))


def _call(x, y, m, reduction, padding, backend, **kw):
    return F.ssim(x, y, mask=m, reduction=reduction, padding=padding, win_size=7, return_components=True,
                  backend=backend, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("reduction", ["mean", "none", "per_channel", "map"])
def test_components_match_oracle(backend, padding, reduction):
    x, y, m = _pair((2, 3, 19, 23))
    xr, yr = x.clone().requires_grad_(), y.clone().requires_grad_()
    ref = _oracle(xr, yr, m, reduction, padding)
    gen = torch.Generator().manual_seed(5)
    gos = [torch.randn(t.shape, dtype=torch.float64, generator=gen) for t in ref]
    rgx, rgy = torch.autograd.grad(sum((t * g).sum() for t, g in zip(ref, gos)), (xr, yr))
    xf, yf = x.clone().requires_grad_(), y.clone().requires_grad_()
    out = _call(xf, yf, m, reduction, padding, backend)
    assert out._fields == ("ssim", "luminance", "contrast", "structure")
    for o, r in zip(out, ref):
        torch.testing.assert_close(o, r.detach(), rtol=1e-10, atol=1e-12)
    gx, gy = torch.autograd.grad(sum((t * g).sum() for t, g in zip(out, gos)), (xf, yf))
    torch.testing.assert_close(gx, rgx, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(gy, rgy, rtol=1e-9, atol=1e-11)
    assert torch.all(gx[(m == 0).expand(x.shape)] == 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ssim_component_is_the_masked_ssim_and_ones_are_unmasked(backend):
    x, y, m = _pair((2, 2, 17, 18), seed=3)
    x, y = x.float(), y.float()
    for padding in PADDINGS:
        out = _call(x, y, m, "none", padding, backend)
        s = F.ssim(x, y, mask=m, reduction="none", padding=padding, win_size=7, backend=backend)
        torch.testing.assert_close(out.ssim, s, rtol=1e-5, atol=1e-6)
        ones = _call(x, y, torch.ones_like(m, dtype=torch.bool), "per_channel", padding, backend)
        plain = F.ssim(x, y, reduction="per_channel", padding=padding, win_size=7, return_components=True,
                       backend="reference")
        for a, b in zip(ones, plain):
            torch.testing.assert_close(a, b, rtol=2e-5, atol=2e-6)


def test_components_with_mask_errors_name_the_argument():
    x, y, m = _pair((1, 1, 9, 10, 11))
    with pytest.raises(ValueError, match="return_components"):
        F.ssim(x, y, mask=m, win_size=3, return_components=True)
    x, y, m = _pair((1, 1, 40, 40))
    with pytest.raises(ValueError, match="mask"):
        F.ssim(x, y, mask=m, downsample=2, return_components=True)


@pytest.mark.skipif("cpu" not in BACKENDS, reason="the compiled CPU kernels are not built")
@pytest.mark.parametrize("padding", PADDINGS)
def test_cpu_bands_strips_layouts_and_threads(padding):
    """The CPU kernel (csrc/cpu/ssim_masked_band.h, comp_band) over several bands and column strips, odd
    sizes: against the oracle in float64, channels_last and bfloat16 against the reference, and bitwise
    the same with 1 and 3 threads."""
    x, y, m = _pair((1, 2, 203, 301), seed=7)
    for red in ("per_channel", "map"):
        for o, r in zip(_call(x, y, m, red, padding, "cpu"), _oracle(x, y, m, red, padding)):
            torch.testing.assert_close(o, r, rtol=1e-10, atol=1e-12)
    xs, ys, ms = _pair((2, 3, 21, 34), seed=9)
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 2e-2)):
        xc, yc = (t.to(dtype).contiguous(memory_format=torch.channels_last) for t in (xs, ys))
        for a, b in zip(_call(xc, yc, ms, "map", padding, "cpu"), _call(xc, yc, ms, "map", padding, "reference")):
            torch.testing.assert_close(a.float(), b.float(), rtol=tol, atol=tol)
    threads, runs = torch.get_num_threads(), []
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            runs.append(_call(x.float(), y.float(), m, "none", padding, "cpu"))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_opcheck(backend):
    """Schema, fake kernel and autograd registration of fastiqa_C::ssim_masked_components_fwd agree with the kernel."""
    x, y, m = _pair((2, 2, 9, 8), seed=15)
    x.requires_grad_()
    packet = torch.ops.fastiqa_C.ssim_masked_components_fwd
    fwd = packet.default if backend == "cpu" else packet.reference
    for padding, want_map in ((0, True), (2, False), (1, True)):
        torch.library.opcheck(fwd, (x, y, m.expand(x.shape), [3, 3], [1.5, 1.5], 1e-4, 9e-4, padding, want_map))
