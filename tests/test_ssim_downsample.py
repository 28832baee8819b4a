"""ssim.m's automatic downsampling (issue 19 item 5): downsample="auto" | k on ssim, ssim_loss,
ms_ssim and their modules, against a float64 transcription of ssim.m written here (MATLAB's
round, imfilter's correlation with its centre floor((f + 1) / 2), padarray 'symmetric',
img(1:f:end, 1:f:end), 1-based as in MATLAB), and the whole of ssim.m (filter2 'valid' with
fspecial('gaussian', 11, 1.5)) on an image large enough for f = 2 and f = 3."""

import math

import numpy as np
import pytest
import torch

import fastiqa.functional as F
import fastiqa.nn as N
from fastiqa.functional import _downsample as D

from support import cpu_backends, tol

BACKENDS = cpu_backends("ssim")


def _slow_for(*names):
    """BACKENDS with the named ones marked slow (interpreted Triton, the eager reference under gradcheck)."""
    return [pytest.param(b, marks=pytest.mark.slow) if b in names else b for b in BACKENDS]
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


# --- the transcription of ssim.m (float64 numpy, MATLAB's 1-based indices) -----------------


def matlab_round(v):
    """MATLAB's round: half away from zero."""
    return math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1)


def padarray_symmetric(a, pre, post):
    """padarray(a, [pre pre], 'symmetric', 'pre') then 'post' per axis, MATLAB's own index
    rule: idx = [1:M M:-1:1]; idx(mod(-pre : M+post-1, 2*M) + 1)."""
    out = a
    for axis in (0, 1):
        m = out.shape[axis]
        idx = np.concatenate([np.arange(1, m + 1), np.arange(m, 0, -1)])
        take = idx[np.mod(np.arange(-pre, m + post), 2 * m)] - 1
        out = np.take(out, take, axis=axis)
    return out


def imfilter_symmetric_same(img, h):
    """imfilter(img, h, 'symmetric', 'same'): correlation, the filter's centre at
    floor((size(h) + 1) / 2) (1-based), padded by centre - 1 before and size - centre after."""
    k = h.shape[0]
    centre = (k + 1) // 2
    p = padarray_symmetric(img, centre - 1, k - centre)
    out = np.zeros_like(img)
    m, n = img.shape
    # out(i, j) = sum over u, v of h(u, v) * p(i + u - 1, j + v - 1), 1-based: one shifted
    # slice of the padded image per filter tap
    for u in range(1, k + 1):
        for v in range(1, k + 1):
            out += h[u - 1, v - 1] * p[u - 1: u - 1 + m, v - 1: v - 1 + n]
    return out


def ssim_m_downsample(img, f):
    """ssim.m: lpf = ones(f, f); lpf = lpf / sum(lpf(:)); imfilter; img(1:f:end, 1:f:end)."""
    if f <= 1:
        return img
    lpf = np.ones((f, f))
    lpf = lpf / lpf.sum()
    return imfilter_symmetric_same(img, lpf)[0::f, 0::f]


def oracle(x, f):
    """Every (image, channel) plane of an (N, C, H, W) tensor through ssim_m_downsample, float64."""
    a = x.detach().double().numpy()
    return torch.from_numpy(np.stack([np.stack([ssim_m_downsample(p, f) for p in img]) for img in a]))


def fspecial_gaussian(size, sigma):
    r = np.arange(size) - (size - 1) / 2
    h = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def filter2_valid(w, img):
    k = w.shape[0]
    win = np.lib.stride_tricks.sliding_window_view(img, (k, k))
    return np.einsum("ijuv,uv->ij", win, w)


def ssim_m(img1, img2, L=255.0, K=(0.01, 0.03)):
    """The whole of ssim.m on one grey image pair (float64): downsampling, then the SSIM map
    of filter2(window, ., 'valid') and its mean."""
    f = max(1, matlab_round(min(img1.shape) / 256))
    img1, img2 = ssim_m_downsample(img1, f), ssim_m_downsample(img2, f)
    c1, c2 = (K[0] * L) ** 2, (K[1] * L) ** 2
    w = fspecial_gaussian(11, 1.5)
    mu1, mu2 = filter2_valid(w, img1), filter2_valid(w, img2)
    s1 = filter2_valid(w, img1 * img1) - mu1 * mu1
    s2 = filter2_valid(w, img2 * img2) - mu2 * mu2
    s12 = filter2_valid(w, img1 * img2) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 * mu1 + mu2 * mu2 + c1) * (s1 + s2 + c2))
    return m.mean(), f


def _pair(shape, dtype=torch.float64, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return (x * scale).to(dtype), (y * scale).to(dtype)


# --- the pre-pass ---------------------------------------------------------------------------


def test_transcription_on_a_hand_example():
    # f = 2: centre 1, out(i) = (in(i) + in(i+1)) / 2 with in(M+1) = in(M); rows 1, 3, 5
    a = np.arange(1.0, 6.0)[:, None] * np.ones((1, 1))
    got = ssim_m_downsample(np.tile(a, (1, 2)), 2)[:, 0]
    np.testing.assert_allclose(got, [1.5, 3.5, 5.0])
    # f = 3: centre 2, out(i) = mean(in(i-1), in(i), in(i+1)) with in(0) = in(1); rows 1, 4
    got = ssim_m_downsample(np.tile(np.arange(1.0, 6.0)[:, None], (1, 3)), 3)[:, 0]
    np.testing.assert_allclose(got, [(1 + 1 + 2) / 3, (3 + 4 + 5) / 3])


@pytest.mark.parametrize("f", [2, 3, 4, 5, 7])
@pytest.mark.parametrize("shape", [(1, 1, 11, 11), (2, 3, 37, 53), (1, 2, 30, 29), (1, 1, 4, 9)],
                         ids=lambda s: "x".join(map(str, s)))
def test_prepass_matches_ssim_m(f, shape):
    x = torch.rand(shape, dtype=torch.float64)
    got = D.ssim_m_downsample(x, f)
    want = oracle(x, f)
    assert got.shape == (*shape[:2], -(-shape[2] // f), -(-shape[3] // f))
    torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided", "transposed"])
def test_prepass_dtypes_and_strides(dtype, layout):
    x64 = torch.rand(2, 3, 23, 26, dtype=torch.float64)
    x = x64.to(dtype)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    elif layout == "strided":
        big = torch.zeros(2, 3, 23, 52, dtype=dtype)
        big[..., ::2] = x
        x = big[..., ::2]
    elif layout == "transposed":
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    for f in (2, 3):
        got = D.ssim_m_downsample(x, f)
        assert got.dtype == dtype
        rtol, atol = tol(dtype)
        torch.testing.assert_close(got.double(), oracle(x.double(), f), rtol=rtol, atol=atol)


def test_avg_pool_equals_ssim_m_only_for_f2_on_even_sides():
    # what pyiqa and piq call downsample: avg_pool2d(kernel_size=f)
    x = torch.rand(1, 2, 24, 36, dtype=torch.float64)  # sides divisible by 2, 3 and 4
    pool = torch.nn.functional.avg_pool2d
    torch.testing.assert_close(D.ssim_m_downsample(x, 2), pool(x, 2), rtol=1e-14, atol=1e-15)
    for f in (3, 4):
        assert not torch.allclose(D.ssim_m_downsample(x, f), pool(x, f))  # shifted blocks
    odd = torch.rand(1, 1, 25, 31, dtype=torch.float64)
    assert D.ssim_m_downsample(odd, 2).shape[-2:] == (13, 16) != pool(odd, 2).shape[-2:]


def test_prepass_gradcheck_float64():
    for f, shape in ((2, (1, 2, 7, 9)), (3, (2, 1, 8, 10)), (4, (1, 1, 5, 11))):
        x = torch.rand(shape, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t, f=f: D.ssim_m_downsample(t, f), (x,))


@pytest.mark.parametrize("side,f", [(255, 1), (383, 1), (384, 2), (639, 2), (640, 3), (767, 3), (768, 3),
                                    (895, 3), (896, 4), (1151, 4), (1152, 5), (127, 1), (1, 1)])
def test_auto_factor_is_matlab_round(side, f):
    assert D.auto_factor(side, side + 40) == f == max(1, matlab_round(side / 256))
    assert D.auto_factor(side + 40, side) == f  # the smaller side decides


# --- ssim / ssim_loss / ms_ssim with downsample ---------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("padding", ["valid", "same_zero"])
def test_ssim_downsample_k_is_ssim_of_the_downsampled_images(backend, k, padding):
    x, y = _pair((2, 3, 35, 41))
    dx, dy = oracle(x, k), oracle(y, k)
    for reduction in ("mean", "none", "per_channel", "map"):
        got = F.ssim(x, y, reduction=reduction, padding=padding, downsample=k, backend=backend)
        want = F.ssim(dx, dy, reduction=reduction, padding=padding, backend=backend)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    got = F.ssim_loss(x, y, reduction="none", downsample=k, backend=backend)
    torch.testing.assert_close(got, F.ssim_loss(dx, dy, reduction="none", backend=backend), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_auto_on_small_images_changes_nothing(backend):
    x, y = _pair((1, 2, 23, 100), torch.float32)  # min side 23: f = 1
    for fn in (F.ssim, F.ssim_loss):
        assert torch.equal(fn(x, y, downsample="auto", backend=backend), fn(x, y, backend=backend))
        assert torch.equal(fn(x, y, downsample=1, backend=backend), fn(x, y, backend=backend))


@pytest.mark.parametrize("shape", [(1, 1, 391, 400), (1, 1, 647, 652)], ids=["f2", "f3"])
def test_auto_equals_the_whole_of_ssim_m(shape):
    x, y = _pair(shape, seed=3, scale=255.0)
    want, f = ssim_m(x[0, 0].numpy(), y[0, 0].numpy())
    assert f == (2 if shape[2] < 640 else 3)
    got = F.ssim(x, y, data_range=255.0, downsample="auto").item()
    assert got == pytest.approx(want, abs=1e-12)
    assert abs(got - F.ssim(x, y, data_range=255.0).item()) > 1e-5  # the pass changes the value


@pytest.mark.parametrize("backend", _slow_for("triton"))
def test_ms_ssim_downsamples_once_before_the_pyramid(backend):
    x, y = _pair((1, 2, 330, 341), torch.float32, seed=4)
    got = F.ms_ssim(x, y, reduction="none", downsample=2, backend=backend)
    want = F.ms_ssim(oracle(x, 2).float(), oracle(y, 2).float(), reduction="none", backend=backend)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="at least 161x161"):
        F.ms_ssim(x, y, downsample=3)  # 110 x 114 after the pass


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_downsampled_ssim_low_precision_against_float64(backend, dtype):
    x, y = _pair((2, 3, 33, 47), seed=5)
    got = F.ssim(x.to(dtype), y.to(dtype), reduction="none", downsample=2, backend=backend)
    want = F.ssim(oracle(x, 2), oracle(y, 2), reduction="none", backend="reference")
    rtol, atol = tol(dtype)
    torch.testing.assert_close(got.double(), want, rtol=rtol, atol=max(atol, 1e-5))


@pytest.mark.parametrize("backend", [b for b in _slow_for("reference") if b != "triton"])
@pytest.mark.parametrize("k", [2, 3])
def test_downsampled_ssim_gradcheck_float64(backend, k):
    x = torch.rand(1, 1, 7 * k + 1, 8 * k - 1, dtype=torch.float64, requires_grad=True)  # odd sides
    y = torch.rand(1, 1, 7 * k + 1, 8 * k - 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: F.ssim(a, b, win_size=7, downsample=k, backend=backend), (x, y))
    assert torch.autograd.gradcheck(
        lambda a, b: F.ssim_loss(a, b, win_size=7, reduction="none", downsample=k, backend=backend), (x, y))


@pytest.mark.parametrize("backend", BACKENDS)
def test_downsampled_gradients_match_the_oracle(backend):
    x0, y0 = _pair((2, 3, 29, 34), torch.float32, seed=6)
    x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
    F.ssim_loss(x, y, downsample=3, win_size=7, backend=backend).backward()
    xr, yr = x0.double().requires_grad_(), y0.double().requires_grad_()
    # the oracle's pass is numpy: differentiate through the torch pre-pass checked above instead,
    # and through the float64 reference SSIM
    (1 - F.ssim(D.ssim_m_downsample(xr, 3), D.ssim_m_downsample(yr, 3), win_size=7, backend="reference")).backward()
    rtol, atol = tol(torch.float32)
    scale = max(xr.grad.abs().max().item(), 1.0)
    torch.testing.assert_close(x.grad.double(), xr.grad, rtol=rtol, atol=atol * scale)
    torch.testing.assert_close(y.grad.double(), yr.grad, rtol=rtol, atol=atol * scale)


def test_bad_downsample_arguments():
    x, y = torch.rand(1, 1, 30, 30), torch.rand(1, 1, 30, 30)
    for bad, err in ((0, ValueError), (-2, ValueError), ("Auto", ValueError), ("2", ValueError),
                     (2.0, TypeError), (True, TypeError), ([2], TypeError)):
        with pytest.raises(err, match="downsample"):
            F.ssim(x, y, downsample=bad)
        with pytest.raises(err, match="downsample"):
            N.SSIMLoss(downsample=bad)
    with pytest.raises(ValueError, match=r"after downsampling by 3 \(downsample=3\)"):
        F.ssim(x, y, downsample=3)  # 10 x 10 < 11 x 11
    with pytest.raises(TypeError):
        F.l1_ssim_loss(x, y, downsample=2)  # not offered: the fused L1 term is on the full image


def test_modules_pass_downsample():
    x, y = _pair((1, 3, 30, 33), torch.float32, seed=7)
    torch.testing.assert_close(N.SSIMLoss(downsample=2)(x, y), F.ssim_loss(x, y, downsample=2))
    assert "downsample=2" in repr(N.SSIMLoss(downsample=2)) and "downsample" not in repr(N.SSIMLoss())
    xm, ym = _pair((1, 1, 330, 335), torch.float32, seed=8)
    torch.testing.assert_close(N.MSSSIMLoss(downsample="auto")(xm, ym), 1 - F.ms_ssim(xm, ym, downsample="auto"))
    assert abs(N.MSSSIMLoss(downsample=2)(xm, ym) - N.MSSSIMLoss()(xm, ym)) > 1e-4
