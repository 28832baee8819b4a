"""Every CPU ISA variant this machine has (fastiqa.cpu_isa) x every input layout
(contiguous, channels_last, strided) x every option that changes a CPU kernel's path,
family by family, values and gradients against the float64 oracle (issue 22: a fault in
one variant's tail loop, or in one layout's strides under one option, must fail here,
not only in a peer comparison).

Kernel paths, by family (csrc/cpu/<family>_impl.h):
  pixel  kind (l1, mse, charbonnier) x reduction (none, sum, mean, weighted_mean) x
         weight (none, full map, (N,1,H,W) plane on NCHW, the same on channels_last
         (the "pixel" mode), broadcast per image)
  psnr   statistic (mse, mae, psnr) x y_channel x crop_border x quantize
  ssim   padding (valid, same_zero, same_reflect) x reduction (map, none, per_channel,
         mean) x output (ssim, ssim_loss, l1_ssim) x gradient (the fused pass) or not
         (the column-strip forward), windows 3..11, MS-SSIM's scales
  gram   gram (normalised or not), style l1 / l2 / fro, against a target Gram
"strided" is a non-dense view (every other column of a wider tensor): the ops make it
contiguous first, so it checks that copy on every variant. Widths are odd so that
every vector loop has a scalar tail (16 float32 lanes on AVX-512, 8 on AVX2).
float32 is judged by fastiqa.testing's rule, float64 within 1e-9 relative.
"""
import functools

import pytest
import torch

import fastiqa.functional as F
from fastiqa import _ext, cpu_isa
from fastiqa.testing import assert_close

pytestmark = pytest.mark.skipif(not _ext.LOADED, reason="compiled kernels not built")

LEVELS = cpu_isa.available()
LAYOUTS = ("contiguous", "channels_last", "strided")


def _laid(t, layout):
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "strided":
        wide = torch.zeros(*t.shape[:-1], 2 * t.shape[-1] + 1, dtype=t.dtype)
        wide[..., 1::2] = t
        view = wide[..., 1::2]
        assert not view.is_contiguous() and not view.is_contiguous(memory_format=torch.channels_last)
        return view
    return t.contiguous()


def _rand(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _w(x, shape):
    """A fixed weight map of `shape` (dims of size 1 broadcast) in x's dtype and, when it has
    x's shape, x's layout (so that a channels_last input gets a channels_last weight)."""
    w = (_rand(shape, 99) + 0.25).to(x.dtype)
    if tuple(shape) == tuple(x.shape):
        w = torch.empty_like(x).copy_(w)
    return w


def _n1hw(x):
    return (x.shape[0], 1, *x.shape[2:])


PIX = (2, 3, 17, 29)
RGB = (2, 3, 24, 37)
SSIM = (2, 3, 27, 101)  # the column-strip forward: two strips and a ragged third (float32, 11x11)
FEAT = (2, 16, 12, 11)

# name -> (fn(x, y, backend) -> tensor, shape, differentiable)
CASES = {
    # pixel
    "pixel_l1_mean": (lambda x, y, b: F.l1_loss(x, y, backend=b), PIX, True),
    "pixel_mse_sum": (lambda x, y, b: F.mse_loss(x, y, reduction="sum", backend=b), PIX, True),
    "pixel_charbonnier_none": (lambda x, y, b: F.charbonnier_loss(x, y, reduction="none", eps=1e-2, backend=b),
                               PIX, True),
    "pixel_l1_full_weight_wmean": (lambda x, y, b: F.l1_loss(x, y, _w(x, x.shape), "weighted_mean", backend=b),
                                   PIX, True),
    "pixel_mse_plane_weight_mean": (lambda x, y, b: F.mse_loss(x, y, _w(x, _n1hw(x)), backend=b), PIX, True),
    "pixel_charbonnier_plane_weight_wmean": (lambda x, y, b: F.charbonnier_loss(
        x, y, _w(x, _n1hw(x)), "weighted_mean", backend=b), PIX, True),
    "pixel_l1_image_weight_wmean": (lambda x, y, b: F.l1_loss(x, y, _w(x, (x.shape[0], 1, 1, 1)), "weighted_mean",
                                                              backend=b), PIX, True),
    "pixel_mse_plane_weight_none": (lambda x, y, b: F.mse_loss(x, y, _w(x, _n1hw(x)), "none", backend=b),
                                    PIX, True),
    # psnr
    "psnr_mse": (lambda x, y, b: F.mse(x, y, reduction="none", backend=b), RGB, True),
    "psnr_mae": (lambda x, y, b: F.mae(x, y, reduction="none", backend=b), RGB, True),
    "psnr_psnr": (lambda x, y, b: F.psnr(x, y, backend=b), RGB, True),
    "psnr_mse_y": (lambda x, y, b: F.mse(x, y, reduction="none", y_channel=True, backend=b), RGB, True),
    "psnr_mae_crop": (lambda x, y, b: F.mae(x, y, reduction="none", crop_border=3, backend=b), RGB, True),
    "psnr_psnr_y_crop": (lambda x, y, b: F.psnr(x, y, reduction="none", y_channel=True, crop_border=4, backend=b),
                         RGB, True),
    "psnr_mse_quantize": (lambda x, y, b: F.mse(x, y, reduction="none", quantize=True, backend=b), RGB, False),
    "psnr_mae_y_crop_quantize": (lambda x, y, b: F.mae(x, y, reduction="none", y_channel=True, crop_border=2,
                                                       quantize=True, backend=b), RGB, False),
    # ssim (each also without a gradient: test_*_no_grad)
    "ssim_valid_mean": (lambda x, y, b: F.ssim(x, y, backend=b), SSIM, True),
    "ssim_valid_map": (lambda x, y, b: F.ssim(x, y, reduction="map", backend=b), SSIM, True),
    "ssim_same_zero_none_w7": (lambda x, y, b: F.ssim(x, y, reduction="none", padding="same_zero", win_size=7,
                                                      backend=b), SSIM, True),
    "ssim_same_reflect_per_channel_w5": (lambda x, y, b: F.ssim(x, y, reduction="per_channel",
                                                                padding="same_reflect", win_size=5, backend=b),
                                         SSIM, True),
    "ssim_same_reflect_map_w3": (lambda x, y, b: F.ssim(x, y, reduction="map", padding="same_reflect", win_size=3,
                                                        backend=b), SSIM, True),
    "ssim_loss_same_zero": (lambda x, y, b: F.ssim_loss(x, y, padding="same_zero", backend=b), SSIM, True),
    "ssim_l1_ssim_valid_none": (lambda x, y, b: F.l1_ssim_loss(x, y, reduction="none", padding="valid", backend=b),
                                SSIM, True),
    "ssim_l1_ssim_same_reflect": (lambda x, y, b: F.l1_ssim_loss(x, y, padding="same_reflect", alpha=0.4,
                                                                 backend=b), SSIM, True),
    "ssim_ms_ssim_w3": (lambda x, y, b: F.ms_ssim(x, y, reduction="per_channel", win_size=3, weights=(0.3, 0.3, 0.4),
                                                  backend=b), SSIM, True),
    # gram
    "gram_normalised": (lambda x, y, b: F.gram_matrix(x, backend=b), FEAT, True),
    "gram_raw": (lambda x, y, b: F.gram_matrix(x, normalize=False, backend=b), FEAT, True),
    "gram_style_l1": (lambda x, y, b: F.style_loss(x, y, backend=b), FEAT, True),
    "gram_style_l2": (lambda x, y, b: F.style_loss(x, y, "l2", backend=b), FEAT, True),
    "gram_style_fro_wide": (lambda x, y, b: F.style_loss(x, y, "fro", backend=b), (2, 40, 9, 10), True),
    "gram_style_l2_target": (lambda x, y, b: F.style_loss(x, criterion="l2", target_gram=F.gram_matrix(
        y.detach(), backend="reference").to(torch.float64 if x.dtype == torch.float64 else torch.float32),
        backend=b), FEAT, True),
}
NAMES = sorted(CASES)
NO_GRAD_NAMES = [n for n in NAMES if n.startswith("ssim_")]  # a separate CPU path without gradient


def _run(name, layout, dtype, backend, level, grad):
    fn, shape, diff = CASES[name]
    seed = NAMES.index(name)
    x = _rand(shape, seed)
    y = (x + 0.2 * (_rand(shape, seed + 1000) - 0.5)).clamp(0, 1)
    x, y = _laid(x.to(dtype), layout), _laid(y.to(dtype), layout)
    diff = diff and grad
    x.requires_grad_(diff)
    y.requires_grad_(diff)
    with (cpu_isa.using(level) if level else torch.enable_grad()):
        out = fn(x, y, backend)
        grads = ()
        if diff:
            probe = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape)
            grads = torch.autograd.grad((out * probe).sum(), (x, y), allow_unused=True)
    return out.detach(), tuple(grads)


@functools.lru_cache(maxsize=None)
def _reference(name, layout, dtype, grad):
    return _run(name, layout, dtype, "reference", None, grad)


def _check(name, layout, level, dtype, grad):
    out, grads = _run(name, layout, dtype, "cpu", level, grad)
    oracle, oracle_grads = _reference(name, layout, torch.float64, grad)
    what = f"{name} ({layout}) on {level}, {dtype}, {'with' if grad else 'without'} gradient"
    if dtype == torch.float64:
        torch.testing.assert_close(out, oracle, rtol=1e-9, atol=1e-11, msg=lambda m: f"{what}: value: {m}")
    else:
        assert_close(out, oracle, _reference(name, layout, dtype, grad)[0], what=f"{what}: value")
    same_grads = _reference(name, layout, dtype, grad)[1]
    assert len(grads) == len(oracle_grads)
    for i, (g, go, gs) in enumerate(zip(grads, oracle_grads, same_grads)):
        assert (g is None) == (go is None), f"{what}: gradient {i} presence"
        if g is None:
            continue
        if dtype == torch.float64:
            torch.testing.assert_close(g, go, rtol=1e-9, atol=1e-11, msg=lambda m: f"{what}: gradient {i}: {m}")
        else:
            assert_close(g, go, gs, what=f"{what}: gradient {i}")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("level", LEVELS)
def test_float32(level, layout, name):
    _check(name, layout, level, torch.float32, grad=True)


@pytest.mark.parametrize("name", NO_GRAD_NAMES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("level", LEVELS)
def test_float32_no_grad(level, layout, name):
    _check(name, layout, level, torch.float32, grad=False)


@pytest.mark.slow  # ~30 s for the matrix on 2 cores; float32 (the fast suite) has the narrower tails
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("level", LEVELS)
def test_float64(level, layout, name):
    """float64 takes half the lanes (other tails) through the same loops."""
    _check(name, layout, level, torch.float64, grad=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", NO_GRAD_NAMES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("level", LEVELS)
def test_float64_no_grad(level, layout, name):
    _check(name, layout, level, torch.float64, grad=False)


def test_the_matrix_covers_every_level_and_layout():
    """Nothing is skipped silently: every level the CPU has, every layout is non-trivial."""
    assert LEVELS and LEVELS[-1] == "baseline"
    x = _rand((1, 3, 4, 5), 0)
    laid = {layout: _laid(x, layout) for layout in LAYOUTS}
    assert laid["contiguous"].is_contiguous()
    assert laid["channels_last"].is_contiguous(memory_format=torch.channels_last)
    assert all(torch.equal(t, x) for t in laid.values())
