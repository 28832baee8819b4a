"""Masked SSIM loss (1 - SSIM with a (N, 1, H, W) bool mask, mean, 11x11 Gaussian) on the CPU:
forward+backward with same_reflect, and the forward alone with valid padding. fastiqa's masked
kernels (csrc/cpu/ssim_masked.h, csrc/cpu/ssim_masked_band.h) vs the eager reference of the
formula (fastiqa/backends/reference/_ssim_masked.py: conv2d, autograd) and torch.compile of it,
and fastiqa's unmasked SSIM loss as the yardstick of what a mask costs: it runs first, and the
masked fastiqa case records `ratio_unmasked` (its median / the unmasked median) in the same run.

    pytest benchmarks/test_bench_ssim_mask.py
    pytest benchmarks/test_bench_ssim_mask.py --benchmark-disable   # smoke (FASTIQA_BENCH_SMOKE=1): small images

Floor: forward reads x, y and the mask; forward+backward also reads them again and writes the
gradient of x. FMAs per pixel of the separable window: forward 6 products x 2 passes x 11 taps
+ 5 products; the gradient adds 4 coefficient maps x 2 passes x 11 taps.
"""
import pytest
import torch

import fastiqa.functional as F
from fastiqa.backends.reference._ssim import windows
from fastiqa.backends.reference._ssim_masked import masked_ssim_terms

from harness import IMPLS, SMOKE, loss_step, run_case

WIN = 11
FMAS_FWD, FMAS_GRAD = 6 * 2 * WIN + 5, 4 * 2 * WIN  # per pixel
SHAPES = [(2, 3, 64, 64)] if SMOKE else [(4, 3, 256, 256)]


def _mask(shape):
    gen = torch.Generator().manual_seed(1)
    return torch.rand((shape[0], 1, *shape[2:]), generator=gen) > 0.2


def _reference(mask, padding):
    def fn(x, y):
        gs = windows(WIN, 1.5, 2, x.dtype, x.device)
        s, m_c, _ = masked_ssim_terms(x, y, mask.to(x.dtype).expand(x.shape), gs, 1e-4, 9e-4, padding)
        return 1 - (m_c * s).sum() / m_c.sum()
    return fn


def implementation(impl, mask, padding):
    if impl == "fastiqa":
        return lambda x, y: F.ssim_loss(x, y, mask=mask, padding=padding)
    if impl == "eager":
        return _reference(mask, padding)
    if impl == "compiled":
        return torch.compile(_reference(mask, padding))
    return lambda x, y: F.ssim_loss(x, y, padding=padding)  # "unmasked"


_UNMASKED = {}  # group -> the unmasked fastiqa median


# unmasked first: the masked fastiqa case's ratio_unmasked needs it (eager still before the others)
@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
@pytest.mark.parametrize("mode,padding", [("fwdbwd", "same_reflect"), ("fwd", "valid")], ids=["fwdbwd", "fwd-valid"])
@pytest.mark.parametrize("impl", ("unmasked",) + IMPLS)
def test_ssim_mask_loss(benchmark, impl, mode, padding, shape):
    if SMOKE and impl not in ("eager", "fastiqa"):
        pytest.skip("smoke mode runs eager and fastiqa only")
    mask = _mask(shape)
    fn = implementation(impl, mask, padding)
    benchmark.group = f"ssim-mask-loss-{mode}-{padding}-{'x'.join(map(str, shape))}-cpu"
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(shape, generator=gen)
    x = (y + 0.1 * torch.randn(shape, generator=gen)).clamp(0, 1)
    step, inputs = loss_step(fn, x, y, mode)
    floor = inputs * x.numel() * x.element_size() + mask.numel()
    fmas = (FMAS_FWD if mode == "fwd" else FMAS_FWD + FMAS_GRAD) * x.numel()
    run_case(benchmark, benchmark.group, impl, step, floor, "cpu",
             rounds=3 if impl == "eager" and not SMOKE else None, fmas=fmas)
    stats = getattr(benchmark, "stats", None)
    if stats is None or not hasattr(stats, "stats"):  # --benchmark-disable
        return
    if impl == "unmasked":
        _UNMASKED[benchmark.group] = stats.stats.median
    elif impl == "fastiqa" and benchmark.group in _UNMASKED:
        benchmark.extra_info["ratio_unmasked"] = round(stats.stats.median / _UNMASKED[benchmark.group], 3)
