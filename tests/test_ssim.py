"""SSIM family: every backend against the float64 reference, values and gradients of
both inputs, every padding and reduction, dtypes, layouts, autograd machinery, bad input."""

import math

import pytest
import torch

import fastiqa
import fastiqa.functional as F
import fastiqa.nn as FN
from fastiqa import cpu_isa
from fastiqa._codes import Padding, Reduction, SsimOutput
from fastiqa.backends import reference as R
from fastiqa.backends.reference import _ssim as R_ssim

from support import backend_devices, cpu_backends, ids, named, overload, param_cases, tol

BACKEND_DEVICES = backend_devices("ssim")
BACKENDS = cpu_backends("ssim")
BD_IDS = ids(BACKEND_DEVICES)

PADDINGS = ("valid", "same_zero", "same_reflect")
REDUCTIONS = ("mean", "none", "per_channel", "map")
# the Triton interpreter is slow: small shapes only there
SHAPES = {
    "reference": [(1, 1, 11, 11), (3, 3, 37, 53), (2, 5, 64, 97), (8, 1, 19, 23)],
    "cpu": [(1, 1, 11, 11), (3, 3, 37, 53), (2, 5, 64, 97), (8, 1, 19, 23), (1, 2, 150, 70)],
    "triton": [(1, 1, 11, 11), (1, 2, 37, 53)],
}
# (backend, device) pairs: on a GPU machine the cuda / triton / reference backends on CUDA tensors too
BD = BACKEND_DEVICES
BD_AXIS = [(f"{b}-{d}", (b, d)) for b, d in BD]
DTYPE_ID = lambda dtype: str(dtype).replace("torch.", "")
INTERPRETED = ("triton", "cpu")  # Triton under the interpreter: small shapes only
# interpreted Triton cases beyond one per code path run in the slow suite (.ci/run runs it)
BD_INTERPRETED_SLOW = param_cases(BD_AXIS, slow=lambda b, d: (b, d) == INTERPRETED)


def shapes(backend, device):
    return SHAPES["triton"] if (backend, device) == INTERPRETED else SHAPES["cpu" if device == "cuda" else backend]


def precision(backend):
    """(dtype, value (rtol, atol), gradient rtol): float64 checks against the float64 reference,
    except on Triton, whose float64 inputs run the reference path (no GPU tl.dot for float64):
    its kernels are checked in float32."""
    if backend == "triton":
        return torch.float32, (1e-5, 2e-5), 2e-5
    return torch.float64, (1e-10, 1e-12), 1e-9


def pair(shape, dtype=torch.float64, noise=0.2, device="cpu"):
    x = torch.rand(shape, dtype=torch.float64)
    y = (x + noise * torch.randn(shape, dtype=torch.float64)).clamp(0, 1)
    return x.to(device, dtype), y.to(device, dtype)


def reference_value_and_grads(x, y, fn, grad_out_seed=1, **kw):
    xr = x.detach().double().requires_grad_()
    yr = y.detach().double().requires_grad_()
    out = fn(xr, yr, **kw)
    go = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(grad_out_seed))
    go = go.to(x.device)
    gx, gy = torch.autograd.grad((out * go).sum(), (xr, yr))
    return out.detach(), gx, gy, go


def fast_value_and_grads(x, y, fn, go, **kw):
    xf = x.detach().clone().requires_grad_()
    yf = y.detach().clone().requires_grad_()
    out = fn(xf, yf, **kw)
    (out * go.to(out.dtype)).sum().backward()
    return out.detach(), xf.grad, yf.grad


def assert_grad_close(g, ref, rtol):
    assert torch.isfinite(g).all()
    scale = ref.abs().max().item()
    err = (g.double() - ref).abs().max().item()
    assert err <= rtol * scale + 1e-12, f"gradient error {err:.3e} vs max {scale:.3e}"


def check_against_reference(x, y, ref_fn, fast_fn, vtol, gtol, fast_inputs=None, **kw):
    """ref_fn in float64 vs fast_fn (on fast_inputs, default x and y): values within vtol = (rtol,
    atol), both gradients within gtol of the largest reference gradient; returns (out, gx, gy)."""
    backend = kw.pop("backend", None)
    ref, rgx, rgy, go = reference_value_and_grads(x, y, ref_fn, **kw)
    out, gx, gy = fast_value_and_grads(*(fast_inputs or (x, y)), fast_fn, go, backend=backend, **kw)
    assert out.shape == ref.shape
    torch.testing.assert_close(out.double(), ref, rtol=vtol[0], atol=vtol[1])
    assert_grad_close(gx, rgx, gtol)
    assert_grad_close(gy, rgy, gtol)
    return out, gx, gy


def _value_cases():
    out = []
    for bid, (backend, device) in BD_AXIS:
        for dtype in (torch.float64, torch.float32):
            for shape in shapes(backend, device):
                # float64 on the Triton interpreter runs the reference path: one small shape by default
                slow = (backend, device) == INTERPRETED and dtype == torch.float64 and shape != (1, 1, 11, 11)
                # interpreted: every padding with the mean, the map once; the other reductions slow
                out += param_cases(
                    [(bid, (backend, device))],
                    [(DTYPE_ID(dtype), dtype)],
                    [("x".join(map(str, shape)), (shape,))],
                    named(PADDINGS),
                    named(REDUCTIONS),
                    slow=lambda b, d, dt, sh, pad, red, slow=slow: slow or (
                        (b, d) == INTERPRETED and red != "mean" and (red, pad) != ("map", "valid")),
                )
    return out


@pytest.mark.parametrize("backend,device,dtype,shape,padding,reduction", _value_cases())
def test_ssim_values_and_grads(backend, device, dtype, shape, padding, reduction):
    x, y = pair(shape, device=device)
    rtol, atol = tol(dtype)
    if reduction == "map" and dtype == torch.float32:
        atol = 2e-5  # per-pixel float32 variance cancellation (E[x^2] - mu^2) in flat windows
    check_against_reference(x, y, R.ssim, F.ssim, (rtol, atol), 1e-9 if dtype == torch.float64 else 2e-5,
                            fast_inputs=(x.to(dtype), y.to(dtype)), padding=padding, reduction=reduction,
                            backend=backend)


@pytest.mark.parametrize(
    "backend,device,win_size,win_sigma",
    param_cases(
        BD_AXIS,
        [("3-0.5", (3, 0.5)), ("7-1.0", (7, 1.0)), ("31-4.0", (31, 4.0))],
        slow=lambda b, d, win, sigma: (b, d) == INTERPRETED and win > 21,
    ),
)  # hundreds of interpreted programs
def test_ssim_windows(backend, device, win_size, win_sigma):
    shape = (1, 2, 33, 35) if (backend, device) != INTERPRETED else (1, 1, 31, 31)
    paddings = PADDINGS
    if (backend, device) == INTERPRETED and win_size > 21:
        # Triton's gradient tile is 33 - win wide (2 pixels here): hundreds of interpreted
        # programs per padding, so one padding (the one with the most index logic)
        paddings = ("same_reflect",)
    dtype, vtol, gtol = precision(backend)
    for padding in paddings:
        x, y = pair(shape, dtype, device=device)
        kw = dict(
            win_size=win_size,
            win_sigma=win_sigma,
            padding=padding,
            reduction="per_channel",
            k1=0.02,
            k2=0.05,
            data_range=1.5,
        )
        check_against_reference(x, y, R.ssim, F.ssim, vtol, gtol, backend=backend, **kw)


@pytest.mark.parametrize(
    "backend,device,dtype",
    param_cases(
        BD_AXIS,
        named([torch.float16, torch.bfloat16], DTYPE_ID),
        slow=lambda b, d, dtype: (b, d) == INTERPRETED,
    ),
)
def test_ssim_low_precision(backend, device, dtype):
    x, y = pair((2, 3, 24, 29), device=device)
    for padding in PADDINGS:
        ref, rgx, rgy, go = reference_value_and_grads(
            x.to(dtype), y.to(dtype), R.ssim, padding=padding, reduction="none"
        )
        out, gx, gy = fast_value_and_grads(
            x.to(dtype), y.to(dtype), F.ssim, go, padding=padding, reduction="none", backend=backend
        )
        assert out.dtype == torch.float32 and gx.dtype == dtype and gy.dtype == dtype
        torch.testing.assert_close(out.double(), ref, rtol=1e-2, atol=1e-2)
        assert_grad_close(gx, rgx, 2e-2)
        assert_grad_close(gy, rgy, 2e-2)
        m = F.ssim(x.to(dtype), y.to(dtype), padding=padding, reduction="map", backend=backend)
        assert m.dtype == dtype


@pytest.mark.parametrize("backend,device", BD_INTERPRETED_SLOW)
def test_ssim_channels_last_and_strided(backend, device):
    x, y = pair((2, 3, 21, 26), torch.float32, device=device)
    for padding in PADDINGS:
        cl = (x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last))
        out, gx, _ = check_against_reference(x, y, R.ssim, F.ssim, (1e-5, 2e-5), 2e-5, fast_inputs=cl,
                                             padding=padding, reduction="map", backend=backend)
        if backend != "reference":
            assert out.is_contiguous(memory_format=torch.channels_last)
            assert gx.is_contiguous(memory_format=torch.channels_last)
        # a non-dense view (every other column) and mixed layouts are read correctly
        xs, ys = pair((2, 3, 21, 52), torch.float32, device=device)
        v = F.ssim(
            xs[..., ::2], ys[..., ::2].contiguous(memory_format=torch.channels_last), padding=padding, backend=backend
        )
        torch.testing.assert_close(
            v.double(), R.ssim(xs[..., ::2].double(), ys[..., ::2].double(), padding=padding), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("backend,device", BD, ids=BD_IDS)
def test_same_modes_at_borders(backend, device):
    # a bright border: same_zero sees zeros outside, same_reflect the mirrored pixels
    dtype, vtol, gtol = precision(backend)
    x, y = pair((1, 1, 17, 19), dtype, device=device)
    x[..., 0, :] = 1.0
    x[..., :, -1] = 0.0
    for padding in ("same_zero", "same_reflect"):
        check_against_reference(x, y, R.ssim, F.ssim, vtol, gtol, padding=padding, reduction="map", backend=backend)
        # border rows / columns really differ between the two modes
    zero = F.ssim(x, y, padding="same_zero", reduction="map", backend=backend)
    refl = F.ssim(x, y, padding="same_reflect", reduction="map", backend=backend)
    assert (zero[..., 0, :] - refl[..., 0, :]).abs().max() > 1e-3
    torch.testing.assert_close(zero[..., 6:-6, 6:-6], refl[..., 6:-6, 6:-6])


GRADCHECK_BACKENDS = [b for b in BACKENDS if b != "triton"]  # Triton: gradients vs the reference above


@pytest.mark.parametrize(
    "backend,padding,reduction,shape,win",
    param_cases(
        named(GRADCHECK_BACKENDS),
        named(PADDINGS),
        named(("mean", "none", "map")),
        [("small", ((1, 1, 7, 8), 3)), ("large", ((1, 2, 12, 13), 5))],
        # the large size, and the reference beyond valid/mean (its gradcheck takes seconds), only in
        # the slow run
        slow=lambda b, p, r, shape, win: win > 3 or (b == "reference" and (p, r) != ("valid", "mean")),
    ),
)
def test_gradcheck(backend, padding, reduction, shape, win):
    x, y = pair(shape)
    fn = lambda a, b: F.ssim(a, b, win_size=win, padding=padding, reduction=reduction, backend=backend)
    assert torch.autograd.gradcheck(fn, (x.clone().requires_grad_(), y.clone().requires_grad_()))


@pytest.mark.parametrize("backend", GRADCHECK_BACKENDS)
def test_gradcheck_l1_ssim_loss(backend):
    x, y = pair((1, 1, 7, 8))
    fn = lambda a, b: F.l1_ssim_loss(a, b, alpha=0.3, win_size=3, reduction="none", backend=backend)
    assert torch.autograd.gradcheck(fn, (x.clone().requires_grad_(), y.clone().requires_grad_()))


def test_opcheck():
    x, y = pair((1, 2, 12, 13), torch.float32)
    for backend in BACKENDS:
        if backend == "triton":
            continue
        for reduction in (Reduction.MEAN, Reduction.NONE, Reduction.PER_CHANNEL, Reduction.MAP):
            args = (x.clone().requires_grad_(), y.clone(), [5, 3], [1.5, 0.9], 1e-4, 9e-4, Padding.SAME_REFLECT,
                    reduction, SsimOutput.SSIM, 0.0, True, False)
            torch.library.opcheck(overload("ssim_fwd", backend), args)
        for reduction, grad_out in ((Reduction.MEAN, torch.tensor(0.5)), (Reduction.MAP, torch.rand(1, 2, 12, 13))):
            torch.library.opcheck(
                overload("ssim_bwd", backend),
                (x, y, [5, 7], [1.5, 1.1], 1e-4, 9e-4, Padding.SAME_ZERO, reduction, SsimOutput.L1_SSIM, 0.2, grad_out,
                 torch.rand(1, 2), True, True),
            )


def test_compile_fullgraph():
    x, y = pair((2, 3, 24, 25), torch.float32)

    def step(a, b):
        return 1 - F.ssim(a, b, padding="same_zero") + F.l1_ssim_loss(a, b)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    step(xa, y).backward()
    compiled(xb, y).backward()
    torch.testing.assert_close(xb.grad, xa.grad)


@pytest.mark.parametrize("backend,device", BD, ids=BD_IDS)
def test_deterministic(backend, device):
    shape = (2, 3, 70, 45) if (backend, device) != INTERPRETED else (1, 2, 20, 21)
    x, y = pair(shape, torch.float32, device=device)
    runs = []
    for _ in range(2):
        xa = x.clone().requires_grad_()
        v = F.ssim(xa, y, padding="same_reflect", backend=backend)
        v.backward()
        runs.append((v.detach().clone(), xa.grad.clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_ssim_loss_hands_the_forward_gradient_over():
    x, y = pair((2, 3, 30, 31), torch.float32)
    xa = x.clone().requires_grad_()
    loss = F.ssim_loss(xa, y)
    saved = loss.grad_fn._saved_tensors if hasattr(loss.grad_fn, "_saved_tensors") else None
    loss.backward()
    xr = x.double().requires_grad_()
    (1 - R.ssim(xr, y.double())).backward()
    assert_grad_close(xa.grad, xr.grad, 2e-5)
    del saved


def test_grad_in_forward_and_handover():
    x, y = pair((2, 3, 30, 31), torch.float32)
    xa = x.clone().requires_grad_()
    loss = 1 - F.ssim(xa, y)
    loss.backward()
    # backward scaled by 1 (through 1 - ssim: grad_out -1) and by a loss weight agree with the reference
    xr = x.double().requires_grad_()
    (1 - R.ssim(xr, y.double())).backward()
    assert_grad_close(xa.grad, xr.grad, 2e-5)
    xb = x.clone().requires_grad_()
    (0.25 * F.ssim(xb, y)).backward()
    assert_grad_close(xb.grad, -0.25 * xr.grad, 2e-5)
    # retain_graph + a second backward gives the same gradient twice
    xc = x.clone().requires_grad_()
    v = F.ssim(xc, y)
    v.backward(retain_graph=True)
    first = xc.grad.clone()
    v.backward()
    torch.testing.assert_close(xc.grad, 2 * first)
    # no grad mode: no gradient work, the same value
    with torch.no_grad():
        torch.testing.assert_close(F.ssim(xa, y), F.ssim(x, y))


def test_autocast():
    x, y = pair((1, 3, 20, 20), torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = F.ssim(x, y)
    torch.testing.assert_close(v, F.ssim(x, y))


@pytest.mark.parametrize("backend,device", BD_INTERPRETED_SLOW)
def test_l1_ssim_loss(backend, device):
    shape = (2, 3, 37, 53) if (backend, device) != INTERPRETED else (1, 2, 23, 24)
    dtype, vtol, gtol = precision(backend)
    x, y = pair(shape, dtype, device=device)
    for reduction in ("mean", "none"):
        for padding in ("same_zero", "valid"):
            kw = dict(alpha=0.3, padding=padding, reduction=reduction)
            check_against_reference(x, y, R.l1_ssim_loss, F.l1_ssim_loss, vtol, gtol, backend=backend, **kw)
    # the 3DGS default: alpha 0.2, zero same padding
    torch.testing.assert_close(
        F.l1_ssim_loss(x, y, backend=backend),
        0.8 * (x - y).abs().mean() + 0.2 * (1 - R.ssim(x, y, padding="same_zero")),
    )


@pytest.mark.parametrize(
    "backend,device", [bd for bd in BD if bd != INTERPRETED], ids=[i for bd, i in zip(BD, BD_IDS) if bd != INTERPRETED]
)
def test_ms_ssim(backend, device):
    need = F.ms_ssim_min_size()
    assert need == 161
    for shape in [(1, 2, need, need), (2, 1, 170, 181)]:
        x, y = pair(shape, device=device)
        ref, rgx, rgy, go = reference_value_and_grads(x, y, R.ms_ssim, reduction="none")
        out, gx, gy = fast_value_and_grads(x, y, F.ms_ssim, go, reduction="none", backend=backend)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
        assert_grad_close(gx, rgx, 1e-9)
        assert_grad_close(gy, rgy, 1e-9)


def test_ms_ssim_small_scales_triton():
    if "triton" not in BACKENDS:
        pytest.skip("triton not installed")
    dtype, vtol, gtol = precision("triton")
    x, y = pair((1, 1, 21, 22), dtype)
    kw = dict(win_size=3, weights=(0.3, 0.3, 0.4), reduction="per_channel")
    ref, rgx, rgy, go = reference_value_and_grads(x, y, R.ms_ssim, **kw)
    out, gx, gy = fast_value_and_grads(x, y, F.ms_ssim, go, backend="triton", **kw)
    torch.testing.assert_close(out.double(), ref, rtol=vtol[0], atol=vtol[1])
    assert_grad_close(gx, rgx, gtol)


def test_ms_ssim_negative_terms_no_nan():
    x = torch.rand(1, 1, 161, 161, dtype=torch.float64)
    y = 1 - x  # anti-correlated: the contrast-structure terms go negative
    xa = x.clone().requires_grad_()
    v = F.ms_ssim(xa, y)
    v.backward()
    assert torch.isfinite(v) and torch.isfinite(xa.grad).all()
    assert v.item() == 0.0


def test_ms_ssim_too_small():
    x, y = pair((1, 1, 160, 200))
    with pytest.raises(ValueError, match="at least 161x161"):
        F.ms_ssim(x, y)


def test_nn_modules():
    x, y = pair((2, 3, 170, 170), torch.float32)
    torch.testing.assert_close(FN.SSIMLoss()(x, y), 1 - F.ssim(x, y))
    torch.testing.assert_close(F.ssim_loss(x, y, reduction="none"), 1 - F.ssim(x, y, reduction="none"))
    torch.testing.assert_close(
        FN.SSIMLoss(padding="same_zero", reduction="none")(x, y),
        1 - F.ssim(x, y, padding="same_zero", reduction="none"),
    )
    torch.testing.assert_close(FN.MSSSIMLoss()(x, y), 1 - F.ms_ssim(x, y))
    torch.testing.assert_close(FN.L1SSIMLoss(alpha=0.4)(x, y), F.l1_ssim_loss(x, y, alpha=0.4))
    with pytest.raises(ValueError, match="reduction"):
        FN.SSIMLoss(reduction="map")


def test_bad_input():
    x, y = pair((1, 3, 20, 20), torch.float32)
    with pytest.raises(ValueError, match="smaller than the 11x11 window"):
        F.ssim(x[..., :10, :], y[..., :10, :])
    with pytest.raises(ValueError, match="smaller than the 11x11 window"):
        F.ssim(x[..., :10], y[..., :10], padding="same_zero")
    with pytest.raises(ValueError, match="win_size"):
        F.ssim(x, y, win_size=4)
    with pytest.raises(ValueError, match="win_size"):
        F.ssim(x, y, win_size=33)
    with pytest.raises(ValueError, match="win_size"):
        F.ssim(x, y, win_size=1)
    with pytest.raises(TypeError, match="win_size"):
        F.ssim(x, y, win_size=11.0)
    with pytest.raises(ValueError, match="win_sigma"):
        F.ssim(x, y, win_sigma=0)
    with pytest.raises(ValueError, match="data_range"):
        F.ssim(x, y, data_range=-1)
    with pytest.raises(ValueError, match="same shape"):
        F.ssim(x, y[:, :2])
    with pytest.raises(ValueError, match="padding"):
        F.ssim(x, y, padding="same")
    with pytest.raises(ValueError, match="reduction"):
        F.ssim(x, y, reduction="sum")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.ssim(x[0], y[0])
    with pytest.raises(TypeError, match="floating-point"):
        F.ssim((x * 255).to(torch.uint8), (y * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="alpha"):
        F.l1_ssim_loss(x, y, alpha=1.5)
    with pytest.raises(ValueError, match="reduction"):
        F.ms_ssim(x, y, reduction="map")
    with pytest.raises(ValueError, match="backend"):
        F.ssim(x, y, backend="gpu")


def test_info_lists_ssim():
    report = fastiqa.info()
    assert "ssim" in report["families"]


def test_reference_adjoint_is_the_transpose():
    # <blur(a), b> == <a, blur_adjoint(b)> for every padding
    g = R.gaussian_window(5, 1.2)
    a = torch.randn(1, 2, 13, 14, dtype=torch.float64)
    for padding in PADDINGS:
        b = torch.randn_like(R_ssim._blur(a, g, padding))
        lhs = (R_ssim._blur(a, g, padding) * b).sum()
        rhs = (a * R.blur_adjoint(b, g, padding)).sum()
        assert math.isclose(lhs.item(), rhs.item(), rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.skipif("cpu" not in cpu_backends("ssim"), reason="compiled CPU kernels not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("padding", ["valid", "same_zero", "same_reflect"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("level", cpu_isa.available())
def test_cpu_forward_across_column_strips(level, dtype, padding, layout):
    """Without a gradient the CPU kernel works in column strips (csrc/cpu/ssim_impl.h
    values_band: 96 output columns in float32, 48 in float64 for an 11x11 window): widths of
    several strips and a ragged last one, every padding, the map and the per-image values."""
    g = torch.Generator().manual_seed(11)
    x = torch.rand(2, 2, 29, 203, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    want_map = F.ssim(x, y, reduction="map", padding=padding, backend="reference")
    want = F.ssim(x, y, reduction="none", padding=padding, backend="reference")
    xs, ys = x.to(dtype), y.to(dtype)
    if layout == "channels_last":
        xs, ys = xs.to(memory_format=torch.channels_last), ys.to(memory_format=torch.channels_last)
    rtol, atol = tol(dtype)
    with cpu_isa.using(level):
        got_map = F.ssim(xs, ys, reduction="map", padding=padding, backend="cpu")
        got = F.ssim(xs, ys, reduction="none", padding=padding, backend="cpu")
    torch.testing.assert_close(got_map.double(), want_map, rtol=rtol * 10, atol=atol * 10)
    torch.testing.assert_close(got.double(), want, rtol=rtol, atol=atol)


@pytest.mark.skipif("cpu" not in cpu_backends("ssim"), reason="compiled CPU kernels not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("padding", ["valid", "same_zero", "same_reflect"])
@pytest.mark.parametrize("needs", ["pred", "target", "both"])
def test_cpu_gradient_across_strips_and_bands(needs, padding, dtype):
    """With a gradient the CPU kernel also works in column strips (csrc/cpu/ssim_impl.h grad_strips:
    64 output columns in float32, 32 in float64 for an 11x11 window) and bands of 64 or 128 rows,
    and keeps only the coefficient maps the requested gradients need (3 rows for one input, 4 for
    both): several strips and bands with ragged last ones, each input alone and both, every
    padding, against the float64 reference's autograd."""
    g = torch.Generator().manual_seed(5)
    x = torch.rand(1, 2, 283, 203, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    want_x, want_y = needs in ("pred", "both"), needs in ("target", "both")
    xr, yr = x.clone().requires_grad_(want_x), y.clone().requires_grad_(want_y)
    F.ssim_loss(xr, yr, padding=padding, backend="reference").backward()
    xs, ys = x.to(dtype).requires_grad_(want_x), y.to(dtype).requires_grad_(want_y)
    F.ssim_loss(xs, ys, padding=padding, backend="cpu").backward()
    gtol = 1e-9 if dtype == torch.float64 else 2e-4
    for got, ref in ((xs.grad, xr.grad), (ys.grad, yr.grad)):
        assert (got is None) == (ref is None)
        if ref is not None:
            assert_grad_close(got, ref, gtol)


@pytest.mark.skipif("cpu" not in cpu_backends("ssim"), reason="compiled CPU kernels not built")
def test_cpu_components_gradient_across_strips():
    """The components' backward keeps 5 coefficient maps (dbx and dby differ) in one pass for both
    inputs: map weights of all four maps, several strips and bands, against the reference."""
    g = torch.Generator().manual_seed(6)
    x = torch.rand(1, 1, 150, 101, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    grads = []
    for backend in ("reference", "cpu"):
        xr, yr = x.clone().requires_grad_(), y.clone().requires_grad_()
        comp = F.ssim(xr, yr, padding="same_reflect", reduction="map", return_components=True, backend=backend)
        w = torch.Generator().manual_seed(7)
        loss = sum((m * torch.randn(m.shape, generator=w, dtype=m.dtype)).sum() for m in comp)
        loss.backward()
        grads.append((xr.grad, yr.grad))
    for got, ref in zip(grads[1], grads[0]):
        assert_grad_close(got, ref, 1e-9)
