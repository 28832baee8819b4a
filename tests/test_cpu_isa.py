"""Every CPU ISA variant this machine supports (avx512 / avx2 / baseline, see
csrc/cpu/isa.h) against the float64 oracle, values and gradients, every family.

Each case switches the variant in-process (fastiqa.cpu_isa.using), runs the CPU
kernels on float32 inputs and judges them with fastiqa.testing.assert_close: the
oracle is the reference backend in float64, the allowance comes from the error of
the reference backend run in float32. FASTIQA_CPU_ISA itself is checked in
subprocesses (it is read once, at first use)."""
import functools
import os
import subprocess
import sys

import pytest
import torch

import fastiqa.functional as F
from fastiqa import _ext, cpu_isa
from fastiqa.testing import assert_close

pytestmark = pytest.mark.skipif(not _ext.LOADED, reason="compiled kernels not built")

LEVELS = cpu_isa.available()


def _pair(shape, seed, channels_last=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.2 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    if channels_last:
        x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
    return x, y


# name -> (loss(x, y, backend) -> tensor, input shape, channels_last, differentiable)
def _mask(x, channels, weights=False):
    """A mask for the masked-SSIM cases, a function of x's shape only: (N, channels, ...), about 30% zeros,
    bool or float weights in (0, 2)."""
    r = torch.rand((x.shape[0], channels, *x.shape[2:]), generator=torch.Generator().manual_seed(5),
                   dtype=torch.float64)
    return r * 2 * (r > 0.3) if weights else r > 0.3


CASES = {
    "l1": (lambda x, y, b: F.l1_loss(x, y, backend=b), (2, 3, 17, 29), False, True),
    "mse_sum": (lambda x, y, b: F.mse_loss(x, y, reduction="sum", backend=b), (2, 3, 17, 29), False, True),
    "charbonnier": (lambda x, y, b: F.charbonnier_loss(x, y, backend=b), (2, 3, 17, 29), False, True),
    "charbonnier_weighted": (lambda x, y, b: F.charbonnier_loss(x, y, weight=(x[:, :1] > 0.5).to(x.dtype),
                                                                reduction="weighted_mean", backend=b),
                             (2, 3, 17, 29), False, True),
    "psnr_y_crop_quantize": (lambda x, y, b: F.psnr(x, y, y_channel=True, crop_border=4, quantize=True,
                                                    backend=b), (2, 3, 40, 37), False, False),
    "psnr_quantize_cl": (lambda x, y, b: F.psnr(x, y, quantize=True, backend=b), (2, 3, 20, 21), True, False),
    "mse_y_crop": (lambda x, y, b: F.mse(x, y, y_channel=True, crop_border=2, backend=b), (2, 3, 24, 35),
                   False, True),
    "mae": (lambda x, y, b: F.mae(x, y, backend=b), (2, 3, 24, 35), False, True),
    "ssim_loss": (lambda x, y, b: F.ssim_loss(x, y, backend=b), (2, 3, 40, 45), False, True),
    "ssim_same_reflect": (lambda x, y, b: F.ssim(x, y, padding="same_reflect", win_size=7, reduction="none",
                                                 backend=b), (2, 2, 33, 70), False, True),
    "ssim_map_cl": (lambda x, y, b: F.ssim(x, y, reduction="map", backend=b), (1, 3, 30, 31), True, True),
    "l1_ssim": (lambda x, y, b: F.l1_ssim_loss(x, y, backend=b), (2, 3, 40, 45), False, True),
    # issue 19 item 4: the components (per channel; the 4 maps, channels_last, zero padding)
    "ssim_components": (lambda x, y, b: torch.stack(F.ssim(x, y, reduction="per_channel", return_components=True,
                                                           backend=b)), (2, 3, 40, 45), False, True),
    "ssim_components_map_cl": (lambda x, y, b: torch.stack(F.ssim(x, y, reduction="map", padding="same_zero",
                                                                  return_components=True, backend=b)),
                               (1, 3, 30, 31), True, True),
    # the components of volumes (csrc/cpu/ssim_volume.h: per-axis window, reflect padding, 2 depth blocks)
    "ssim_components_volume": (lambda x, y, b: torch.stack(F.ssim(x, y, reduction="map", padding="same_reflect",
                                                                  win_size=(5, 3, 7), return_components=True,
                                                                  backend=b)), (1, 2, 19, 9, 12), False, True),
    # issue 19 item 3: the masked SSIM (csrc/cpu/ssim_masked.h): (N, 1) bool mask with reflect padding; the map of
    # a float (N, C) mask, channels_last, zero padding; the L1 + SSIM loss of a volume
    "ssim_masked": (lambda x, y, b: F.ssim(x, y, mask=_mask(x, 1), padding="same_reflect", win_size=7,
                                           reduction="none", backend=b), (2, 3, 33, 40), False, True),
    "ssim_masked_map_cl": (lambda x, y, b: F.ssim(x, y, mask=_mask(x, 3, True), reduction="map", padding="same_zero",
                                                  backend=b), (1, 3, 30, 31), True, True),
    # masked components (csrc/cpu/ssim_masked_band.h comp_band)
    "ssim_masked_components": (lambda x, y, b: torch.stack(F.ssim(x, y, mask=_mask(x, 1), padding="same_zero",
                                                                  win_size=7, reduction="per_channel",
                                                                  return_components=True, backend=b)),
                               (2, 3, 33, 40), False, True),
    "l1_ssim_masked_volume": (lambda x, y, b: F.l1_ssim_loss(x, y, mask=_mask(x, 2, True), win_size=5, backend=b),
                              (1, 2, 9, 12, 13), False, True),
    "gram": (lambda x, y, b: F.gram_matrix(x, backend=b), (2, 16, 12, 11), False, True),
    "gram_cl": (lambda x, y, b: F.gram_matrix(x, backend=b), (2, 16, 12, 11), True, True),
    "style_l1": (lambda x, y, b: F.style_loss(x, y, backend=b), (2, 16, 12, 11), False, True),
    "style_fro_wide": (lambda x, y, b: F.style_loss(x, y, criterion="fro", backend=b), (2, 40, 9, 10), False, True),
    "style_l2_target": (lambda x, y, b: F.style_loss(x, criterion="l2", target_gram=F.gram_matrix(
        y.detach(), backend="reference").to(torch.float64 if x.dtype == torch.float64 else torch.float32),
        backend=b), (2, 16, 12, 11), False, True),
}


def _run(name, dtype, backend, level=None):
    """(value, grads) of case `name` with inputs in `dtype` on `backend`."""
    fn, shape, cl, diff = CASES[name]
    x, y = _pair(shape, seed=sorted(CASES).index(name), channels_last=cl)
    x, y = x.to(dtype).requires_grad_(diff), y.to(dtype).requires_grad_(diff)
    if level is None:
        out = fn(x, y, backend)
    else:
        with cpu_isa.using(level):
            out = fn(x, y, backend)
    grads = ()
    if diff:
        probe = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape)
        grads = tuple(g for g in torch.autograd.grad((out * probe).sum(), (x, y), allow_unused=True))
    return out.detach(), grads


@functools.lru_cache(maxsize=None)
def _reference(name, dtype):
    """The reference backend's (value, grads) in dtype: computed once for every level."""
    return _run(name, dtype, "reference")


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("level", LEVELS)
def test_variant_matches_float64_oracle(level, name):
    oracle, oracle_grads = _reference(name, torch.float64)
    same, same_grads = _reference(name, torch.float32)
    out, grads = _run(name, torch.float32, "cpu", level)
    assert_close(out, oracle, same, what=f"{name} on {level}: value")
    for i, (g, go, gs) in enumerate(zip(grads, oracle_grads, same_grads)):
        if go is None:
            assert g is None
            continue
        assert_close(g, go, gs, what=f"{name} on {level}: gradient of input {i}")


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("level", LEVELS)
def test_variant_float64_matches_oracle(level, name):
    """float64 inputs take other vector widths (half the lanes) through the same loops."""
    oracle, oracle_grads = _reference(name, torch.float64)
    out, grads = _run(name, torch.float64, "cpu", level)
    # SSIM in float64 differs from the oracle by more than a few ulps in flat windows
    # (E[x^2] - mu^2 cancellation, another summation order): a fixed relative allowance
    torch.testing.assert_close(out, oracle, rtol=1e-9, atol=1e-11, msg=lambda m: f"{name} on {level}: {m}")
    for g, go in zip(grads, oracle_grads):
        assert (g is None) == (go is None)
        if g is not None:
            torch.testing.assert_close(g, go, rtol=1e-9, atol=1e-11, msg=lambda m: f"{name} on {level}: {m}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("level", LEVELS)
def test_variant_quantised_psnr_keeps_nan_and_clamps_inf(level, dtype):
    """The vector clamp of the quantised path (max/min instructions) keeps a NaN sample and
    clamps +-inf, in the vector body and in the scalar tail of a row."""
    x = torch.rand(2, 3, 12, 37, dtype=dtype)
    y = x.clone()
    x[0, 1, 5, 3] = float("nan")    # vector body
    x[0, 2, 7, 36] = float("nan")   # tail (37 = 2 x 16 + 5)
    x[1, 0, 2, 4] = float("inf")
    y[1, 0, 2, 4] = 1.0
    x[1, 1, 9, 20] = -float("inf")
    y[1, 1, 9, 20] = 0.0
    with cpu_isa.using(level):
        for opts in (dict(y_channel=True, crop_border=1), dict()):
            got = F.mse(x, y, reduction="none", quantize=True, backend="cpu", **opts)
            want = F.mse(x, y, reduction="none", quantize=True, backend="reference", **opts)
            assert torch.isnan(got[0]) and torch.isnan(want[0])
            torch.testing.assert_close(got[1], want[1], rtol=0, atol=0)


@pytest.mark.parametrize("eps", [1e-3, 1e-30], ids=["eps", "eps_squared_underflows"])
@pytest.mark.parametrize("level", LEVELS)
def test_variant_charbonnier_float32_elementwise(level, eps):
    """Float32 Charbonnier's vector loop (reciprocal square root estimate and one Newton step,
    csrc/cpu/pixel_impl.h) against the IEEE formula in float32, element by element: within 5
    ulps; a vector with an inf, a NaN, a square that overflows or a zero q (eps^2 below
    float32's range, pred == target) takes the IEEE form, in the vector body and the tail."""
    g = torch.Generator().manual_seed(11)
    x = torch.rand(3, 2, 9, 41, generator=g)  # rows of 41: vector body and a scalar tail
    y = torch.rand(3, 2, 9, 41, generator=g)
    x[0, 0, 0, 3] = float("inf")
    x[0, 1, 2, 5] = float("nan")
    x[1, 0, 4, 7] = 3e19  # d^2 overflows: value inf, gradient d / inf = 0
    x[1, 1, 3, 9] = y[1, 1, 3, 9]  # d = 0
    x[2, 1, 8, 40] = -float("inf")  # the tail
    out = {}
    for backend in ("cpu", "reference"):
        xg = x.clone().requires_grad_()
        with cpu_isa.using(level):
            loss = F.charbonnier_loss(xg, y, reduction="none", eps=eps, backend=backend)
            loss.backward(torch.ones_like(loss))
        out[backend] = (loss.detach(), xg.grad)
    for got, want in zip(out["cpu"], out["reference"]):
        assert torch.equal(torch.isnan(got), torch.isnan(want)) and torch.equal(torch.isinf(got), torch.isinf(want))
        finite = torch.isfinite(want)
        assert torch.equal(got[~finite & ~torch.isnan(want)], want[~finite & ~torch.isnan(want)])
        torch.testing.assert_close(got[finite], want[finite], rtol=5 * torch.finfo(torch.float32).eps, atol=1e-30)


@pytest.mark.parametrize("level", LEVELS)
def test_using_switches_and_restores(level):
    before = cpu_isa.active()
    with cpu_isa.using(level):
        assert cpu_isa.active() == level
    assert cpu_isa.active() == before


def test_available_levels_are_ordered_and_include_baseline():
    assert LEVELS[-1] == "baseline"
    order = [lv for lv in cpu_isa.LEVELS if lv in LEVELS]
    assert LEVELS == order
    assert cpu_isa.active() in LEVELS


def test_select_rejects_unknown_level():
    with pytest.raises(ValueError, match="level='sse9'"):
        cpu_isa.select("sse9")


def _in_subprocess(env_value, code="from fastiqa import cpu_isa; print(cpu_isa.active())"):
    env = dict(os.environ, FASTIQA_CPU_ISA=env_value)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


# one interpreter per level: the forced baseline in the fast suite, the others slow
@pytest.mark.parametrize("level", [pytest.param(lv, marks=[] if lv == "baseline" else [pytest.mark.slow])
                                   for lv in LEVELS])
def test_env_variable_selects_level(level):
    r = _in_subprocess(level)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == level


def test_env_variable_unknown_value_is_a_clear_error():
    r = _in_subprocess("avx3", "import torch, fastiqa.functional as F; F.l1_loss(torch.ones(2), torch.zeros(2), "
                       "backend='cpu')")
    assert r.returncode != 0
    assert "FASTIQA_CPU_ISA=avx3" in r.stderr and "expected one of avx512, avx2, baseline" in r.stderr


@pytest.mark.skipif("avx512" in LEVELS, reason="this CPU supports every level")
def test_env_variable_unsupported_level_is_a_clear_error():
    r = _in_subprocess("avx512")
    assert r.returncode != 0
    assert "FASTIQA_CPU_ISA=avx512" in r.stderr and "supported here" in r.stderr
