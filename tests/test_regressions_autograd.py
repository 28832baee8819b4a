"""Regression tests of issue 9: every case it lists, on every backend that runs here.

1 retained graphs never share memory; 2 create_graph gives a gradient with a graph
(gradgradcheck in float64); 3 float16 + GradScaler scales in float32 and stored
float16 gradients do not underflow; 4 no NaN from padding lanes; 5 ms_ssim keeps
NaN; 6 the value does not depend on requires_grad; 7 argument messages.
"""
import math

import numpy as np
import pytest
import torch
from _op_matrix import OPS

import fastiqa.functional as F
import fastiqa.nn as fnn

from support import BACKENDS

OP_NAMES = sorted(OPS)
SIDE = 10  # >= ms_ssim's 9 with three scales and win_size 3
SSIM_FAMILY = ("ssim", "ssim_loss", "l1_ssim_loss", "ms_ssim")


def _params(names, backends, slow):
    """(name, backend) params, marked slow where slow(name, backend) holds (.ci/run runs them)."""
    return [pytest.param(n, b, marks=[pytest.mark.slow] if slow(n, b) else []) for b in backends for n in names]


def _inputs(op, dtype=torch.float64, side=SIDE, grad_target=False):
    x = torch.rand(2, 3, side, side, dtype=dtype) * 0.5 + 0.25
    y = x + 0.1 * torch.randn_like(x)  # correlated: MS-SSIM's terms stay > 0 (0 ** w has no 2nd derivative)
    return x.requires_grad_(), y.requires_grad_(grad_target and op.grad_target)


def _scalar(op, x, y, backend):
    out = op.run(x, y, "mean", backend, {})
    return out if out.dim() == 0 else out.sum()


# ---------------------------------------------------------------------------- 1 retained graphs


# the interpreted Triton SSIM family: seconds per case, in the slow suite
TRITON_SSIM = lambda n, b: b == "triton" and n in SSIM_FAMILY  # noqa: E731


@pytest.mark.parametrize("name, backend", _params(OP_NAMES, BACKENDS, TRITON_SSIM))
def test_retain_graph_gives_separate_buffers(name, backend):
    op = OPS[name]
    x, y = _inputs(op, torch.float32)
    loss = _scalar(op, x, y, backend)
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    expected = g1.clone()
    g1.mul_(100.0)  # an in-place change of the first result ...
    (g2,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g3,) = torch.autograd.grad(loss, x)  # ... never raises nor changes a later one
    assert g2.data_ptr() != g1.data_ptr() and g3.data_ptr() not in (g1.data_ptr(), g2.data_ptr())
    torch.testing.assert_close(g2, expected)
    torch.testing.assert_close(g3, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_kept_across_calls_accumulate(backend):
    x = torch.rand(1, 2, 8, 8, requires_grad=True)
    y = torch.rand(1, 2, 8, 8)
    F.ssim_loss(x, y, win_size=3, backend=backend).backward()
    first = x.grad.clone()
    F.ssim_loss(x, y, win_size=3, backend=backend).backward()
    torch.testing.assert_close(x.grad, 2 * first)


# ---------------------------------------------------------------------------- 2 create_graph


@pytest.mark.parametrize("name, backend", _params(OP_NAMES, BACKENDS, TRITON_SSIM))
def test_create_graph_gradient_has_graph(name, backend):
    op = OPS[name]
    x, y = _inputs(op)
    (g,) = torch.autograd.grad(_scalar(op, x, y, backend), x, create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    penalty = (g * g).sum()  # gradient penalty (WGAN-GP, R1)
    (gg,) = torch.autograd.grad(penalty, x)
    xr = x.detach().requires_grad_()
    (gr,) = torch.autograd.grad(op.ref(xr, y.detach(), "mean", {}).sum(), xr, create_graph=True)
    (ggr,) = torch.autograd.grad((gr * gr).sum(), xr)
    torch.testing.assert_close(gg, ggr)


# the SSIM family's float64 gradgradchecks take 2-50 s each: slow (create_graph itself is
# checked for every op and backend by test_create_graph_gradient_has_graph above)
@pytest.mark.parametrize("name, backend", _params(OP_NAMES, BACKENDS, lambda n, b: n in SSIM_FAMILY))
def test_gradgradcheck(name, backend):
    op = OPS[name]
    x, y = _inputs(op, side=9 if op.min_side > 3 else 5)
    x, y = x[:1, :1].detach().requires_grad_(), y[:1, :1].detach()
    assert torch.autograd.gradgradcheck(lambda a: op.run(a, y, "mean", backend, {}), (x,))


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].grad_target])
def test_gradgradcheck_both_inputs(name, backend):
    op = OPS[name]
    x, y = _inputs(op, side=9 if op.min_side > 3 else 5, grad_target=True)
    assert torch.autograd.gradgradcheck(lambda a, b: op.run(a, b, "mean", backend, {}), (x, y))


# ---------------------------------------------------------------------------- 3 float16 + GradScaler


@pytest.mark.parametrize("name, backend", _params(["ssim_loss", "l1_ssim_loss", "ssim", "l1_loss", "mse_loss", "psnr"],
                                                 BACKENDS, TRITON_SSIM))
def test_float16_gradscaler_scale(name, backend):
    op = OPS[name]
    x32, y32 = _inputs(op, torch.float32, side=32)
    x16, y16 = x32.detach().half().requires_grad_(), y32.detach().half()
    x32 = x16.detach().float().requires_grad_()  # the same values
    (_scalar(op, x16, y16, backend) * 65536.0).backward()
    (_scalar(op, x32, y16.float(), backend) * 65536.0).backward()
    assert torch.isfinite(x16.grad).all()
    expected = x32.grad.half().float()
    err = (x16.grad.float() - expected).abs().max()
    assert err <= 0.02 * expected.abs().max(), err


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("numel", [1_600_000, 12_600_000])
def test_float16_mean_gradient_does_not_underflow(numel, backend):
    if backend == "triton":
        pytest.skip("the Triton interpreter takes minutes at this size (the kernel path is the same as cpu's)")
    x = (torch.rand(numel) + 1).half().requires_grad_()
    y = torch.zeros(numel, dtype=torch.float16)
    (F.l1_loss(x, y, backend=backend) * 65536.0).backward()
    exact = 65536.0 / numel
    torch.testing.assert_close(x.grad.float(), torch.full_like(x.grad, exact, dtype=torch.float32), rtol=1e-3, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["cpu"])
def test_float16_mean_gradient_39m(backend):
    if backend not in BACKENDS:
        pytest.skip("compiled CPU kernels not built")
    numel = 39_000_000
    x = torch.ones(numel, dtype=torch.float16).requires_grad_()
    (F.l1_loss(x, torch.zeros_like(x), backend=backend) * 65536.0).backward()
    assert float(x.grad.float().min()) > 0
    torch.testing.assert_close(x.grad[:10].float(), torch.full((10,), 65536.0 / numel), rtol=1e-3, atol=0)


# ---------------------------------------------------------------------------- 4 padding lanes


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding", ["valid", "same_zero", "same_reflect"])
@pytest.mark.parametrize("width", [16, 17, 19, 23])
def test_k1_zero_small_sigma_gradient_is_finite(width, padding, backend):
    x = (torch.rand(1, 1, 16, width) * 0.5 + 0.25).requires_grad_()
    y = torch.rand(1, 1, 16, width) * 0.5 + 0.25
    F.ssim(x, y, k1=0.0, win_sigma=0.5, padding=padding, backend=backend).backward()
    assert torch.isfinite(x.grad).all()


# ---------------------------------------------------------------------------- 5 NaN in, NaN out


@pytest.mark.parametrize("backend", BACKENDS)
def test_ms_ssim_nan_pixel_gives_nan(backend):
    x = torch.rand(1, 1, 40, 40)
    y = torch.rand(1, 1, 40, 40)
    x[0, 0, 5, 5] = float("nan")
    assert math.isnan(float(F.ms_ssim(x, y, win_size=3, backend=backend)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_ms_ssim_overflow_is_not_a_silent_zero(backend):
    x = torch.rand(1, 1, 40, 40) * 1e30
    y = torch.rand(1, 1, 40, 40) * 1e30
    v = float(F.ms_ssim(x, y, 1e30, win_size=3, backend=backend))
    ref = float(F.ms_ssim(x.double(), y.double(), 1e30, win_size=3, backend="reference"))
    assert math.isnan(v) or abs(v - ref) < 1e-3, (v, ref)


# ---------------------------------------------------------------------------- 6 requires_grad


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["ssim", "ssim_loss", "l1_ssim_loss"])
def test_value_independent_of_requires_grad(name, backend):
    op = OPS[name]
    x, y = _inputs(op, torch.float32, side=16)
    x, y = x.detach() * 1e-19, y.detach() * 1e-19
    opts = {"data_range": 1e-19}
    plain = op.run(x, y, "mean", backend, opts)
    graded = op.run(x.requires_grad_(), y, "mean", backend, opts)
    torch.testing.assert_close(graded.detach(), plain, equal_nan=True)


# ---------------------------------------------------------------------------- 7 messages


@pytest.mark.parametrize("value", [np.float64(2.0), np.float32(2.0), torch.tensor(2.0), np.int64(2)])
def test_data_range_accepts_numpy_and_0d_tensor(value):
    x, y = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(F.ssim(x, y, value), F.ssim(x, y, 2.0))
    torch.testing.assert_close(F.psnr(x, y, value), F.psnr(x, y, 2.0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(k2=float("nan")), r"k2 must be a finite number >= 0, got nan"),
    (dict(k1=-1.0), r"k1 must be a finite number >= 0, got -1.0"),
    (dict(win_sigma=float("nan")), r"win_sigma must be a finite number > 0"),
    (dict(data_range=float("inf")), r"data_range must be a finite number > 0, got inf"),
    (dict(win_size=4), r"win_size must be an odd integer in \[3, 31\], got 4"),
])
def test_ssim_messages(kwargs, match):
    x, y = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match=match):
        F.ssim(x, y, **kwargs)


@pytest.mark.parametrize("make, match", [
    (lambda: fnn.SSIMLoss(win_size=4), r"win_size must be an odd integer"),
    (lambda: fnn.SSIMLoss(k2=float("nan")), r"k2 must be a finite number >= 0"),
    (lambda: fnn.MSSSIMLoss(weights=[]), r"weights must hold at least one"),
    (lambda: fnn.L1SSIMLoss(alpha=1.5), r"alpha must be a number in \[0, 1\], got 1.5"),
    (lambda: fnn.PSNRLoss(crop_border=-1), r"crop_border must be an integer >= 0"),
    (lambda: fnn.SSIMLoss(padding="same"), r"padding must be one of"),
])
def test_module_validates_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("value", ["1", None, True, torch.ones(2)])
def test_data_range_type_errors_name_the_rule(value):
    x, y = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    with pytest.raises(TypeError, match="data_range must be a finite number > 0"):
        F.ssim(x, y, value)


def test_empty_image_message():
    x = torch.rand(1, 1, 0, 32)
    with pytest.raises(ValueError, match="non-empty images"):
        F.psnr(x, x)
