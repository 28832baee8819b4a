"""The Triton kernels of SSIM on volumes (fastiqa/backends/triton/ssim_volume.py), run by
Triton's interpreter on CPU tensors: values and gradients of both inputs against the float64
oracle of tests/test_ssim_volumes.py (the explicit 3-D window), every padding, per-axis
windows, float32 / float16 / bfloat16, contiguous / channels_last_3d / strided inputs, map
weights; the reference's torch path must not run (it is the fallback of float64 only)."""

import pytest
import torch
from test_ssim_volumes import PADDINGS, _pair, oracle_map

import fastiqa.backends.reference as R
import fastiqa.functional as F

from support import cpu_backends, tol

pytestmark = pytest.mark.skipif("triton" not in cpu_backends("ssim"),
                                reason="Triton's interpreter does not run the ssim ops here")

WIN = ((3, 7, 5), (0.8, 1.5, 1.1))


@pytest.fixture
def no_reference(monkeypatch):
    """Fails any call of the reference's plane kernels (the Triton backend's fallback)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the Triton backend ran the reference's torch path for volumes")

    monkeypatch.setattr(R, "planes_fwd", refuse)
    monkeypatch.setattr(R, "planes_bwd", refuse)


def _kw(padding, win=WIN):
    return dict(win_size=win[0], win_sigma=win[1], padding=padding, backend="triton")


# the interpreter takes seconds per case: reflect (the mirrored slices, rows and columns) in the
# fast suite, the other paddings slow
@pytest.mark.parametrize("padding", [pytest.param(p, marks=pytest.mark.slow) if p != "same_reflect" else p
                                     for p in PADDINGS])
def test_values_and_gradients_float32(padding, no_reference):
    # 11 slices: the depth window at both ends; odd H and W
    x0, y0 = _pair((1, 1, 11, 9, 12), torch.float32, seed=11)
    want = oracle_map(x0, y0, *WIN, padding)
    rtol, atol = tol(torch.float32)
    got = F.ssim(x0, y0, reduction="map", **_kw(padding))
    assert got.shape == want.shape and got.is_contiguous()
    torch.testing.assert_close(got.double(), want, rtol=rtol, atol=1e-5)
    for fn in (F.ssim_loss, F.l1_ssim_loss):
        x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
        loss = fn(x, y, **_kw(padding))
        loss.backward()
        xr, yr = x0.double().requires_grad_(), y0.double().requires_grad_()
        ref = 1 - oracle_map(xr, yr, *WIN, padding).mean()
        if fn is F.l1_ssim_loss:
            ref = 0.8 * (xr - yr).abs().mean() + 0.2 * ref
        ref.backward()
        torch.testing.assert_close(loss.double(), ref.detach(), rtol=rtol, atol=1e-5)
        scale = max(xr.grad.abs().max().item(), 1.0)
        torch.testing.assert_close(x.grad.double(), xr.grad, rtol=rtol, atol=atol * scale)
        torch.testing.assert_close(y.grad.double(), yr.grad, rtol=rtol, atol=atol * scale)


def test_map_backward(no_reference):
    x0, y0 = _pair((1, 1, 17, 8, 9), torch.float32, seed=12)
    win = ((5, 3, 3), (1.0, 1.5, 0.7))
    g = torch.rand(1, 1, 13, 6, 7, dtype=torch.float32, generator=torch.Generator().manual_seed(3))
    x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
    (F.ssim(x, y, reduction="map", **_kw("valid", win)) * g).sum().backward()
    xr, yr = x0.double().requires_grad_(), y0.double().requires_grad_()
    (oracle_map(xr, yr, *win) * g.double()).sum().backward()
    scale = xr.grad.abs().max().item()
    torch.testing.assert_close(x.grad.double(), xr.grad, rtol=1e-5, atol=1e-6 * scale)
    torch.testing.assert_close(y.grad.double(), yr.grad, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("dtype,layout", [(torch.float16, "channels_last_3d"), (torch.bfloat16, "strided"),
                                          pytest.param(torch.float32, "strided", marks=pytest.mark.slow)], ids=str)
def test_low_precision_and_layouts(dtype, layout, no_reference):
    x, y = _pair((2, 1, 9, 10, 22), seed=13)
    xd, yd = x.to(dtype), y.to(dtype)
    if layout == "channels_last_3d":
        xd, yd = xd.to(memory_format=torch.channels_last_3d), yd.to(memory_format=torch.channels_last_3d)
    else:
        xd, yd = xd[..., ::2], yd[..., ::2]
    rtol, atol = tol(dtype)
    pad = "same_reflect"
    got = F.ssim(xd, yd, reduction="none", **_kw(pad))
    torch.testing.assert_close(got.double(), oracle_map(xd, yd, *WIN, pad).mean((1, 2, 3, 4)), rtol=rtol,
                               atol=max(atol, 1e-5))
    xg, yg = xd.clone().requires_grad_(), yd.clone().requires_grad_()
    F.ssim_loss(xg, yg, **_kw(pad)).backward()
    xr, yr = xd.double().requires_grad_(), yd.double().requires_grad_()
    (1 - oracle_map(xr, yr, *WIN, pad).mean()).backward()
    assert xg.grad.dtype == dtype and xg.grad.shape == xd.shape
    scale = xr.grad.abs().max().item()
    low = dtype != torch.float32
    torch.testing.assert_close(xg.grad.double(), xr.grad, rtol=rtol, atol=(1e-2 if low else 1e-6) * scale)
    torch.testing.assert_close(yg.grad.double(), yr.grad, rtol=rtol, atol=(1e-2 if low else 1e-6) * scale)


def test_float64_runs_the_reference():
    x, y = _pair((1, 1, 7, 8, 9), torch.float64, seed=14)
    got = F.ssim(x, y, reduction="map", **_kw("same_zero"))
    want = F.ssim(x, y, reduction="map", win_size=WIN[0], win_sigma=WIN[1], padding="same_zero",
                  backend="reference")
    assert torch.equal(got, want)


def test_components_values_and_gradients(no_reference):
    """return_components=True on a volume runs the Triton kernels (COMP: the l, c, s sums and maps; the
    gradient's fifth adjoint volume): the four maps and both gradients of a random loss on all four
    against tests/test_ssim_components.py's float64 oracle (the whole 3-D window), reflect padding,
    map weights on every component."""
    from test_ssim_components import check

    x, y = _pair((1, 2, 7, 9, 10), torch.float32, seed=12)
    out, _, _ = check(x, y, "triton", (1e-4, 2e-5), 1e-4, reduction="map", padding="same_reflect",
                      win_size=(3, 5, 3), win_sigma=(0.8, 1.5, 1.1))
    assert all(o.shape == x.shape and o.dtype == x.dtype for o in out)
