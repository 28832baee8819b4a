"""SSIM loss (1 - SSIM, mean, 11x11 Gaussian, valid padding) forward and forward+backward:
fastiqa vs the eager separable reference, torch.compile of it, and the peers that are
installed (pytorch_msssim, kornia, torchmetrics; fused-ssim on CUDA, same_zero padding as
it only offers "same"/"valid" with its own conventions), in the same run, grouped by mode,
shape and device.

    pytest benchmarks/test_bench_ssim.py
    pytest benchmarks/ --benchmark-disable       # smoke (FASTIQA_BENCH_SMOKE=1): small shapes

Floor: forward reads x and y (2 tensors); forward+backward also writes the gradient of x
(3 tensors). FMAs per pixel (issue 23's count of the separable 11-tap window): forward
5 statistics x 2 passes x 11 taps + the 3 products (x^2, y^2, xy); the gradient adds
3 coefficient maps x 2 passes x 11 taps. extra_info (harness.run_case): floor_bytes, ratio_eager, floor_frac; on CUDA
also peak_extra_MiB, the memory the step allocates beyond its inputs at its peak.
"""
import importlib.util

import pytest
import torch

import fastiqa.functional as F
from fastiqa.backends import reference as R

from harness import IMPLS, SMOKE, devices, loss_step, run_case

PEERS = ("pytorch_msssim", "kornia", "torchmetrics", "fused_ssim")
WIN = 11
FMAS_FWD, FMAS_GRAD = 5 * 2 * WIN + 3, 3 * 2 * WIN  # per pixel


def shapes(device):
    if SMOKE:
        return [(2, 3, 32, 32)]
    if device == "cuda":
        return [(8, 3, 256, 256), (4, 3, 512, 512), (5, 3, 1080, 1920)]
    return [(8, 3, 256, 256), (4, 3, 512, 512)]


def _have(mod):
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


def _reference(x, y):
    return 1 - R.ssim(x, y)


def implementation(impl, device):
    if impl == "fastiqa":
        return F.ssim_loss
    if impl == "eager":
        return _reference
    if impl == "compiled":
        return torch.compile(_reference)
    if not _have(impl) or (impl == "fused_ssim" and device != "cuda"):
        pytest.skip(f"{impl} not installed here (or not for {device})")
    if impl == "pytorch_msssim":
        import pytorch_msssim

        return lambda x, y: 1 - pytorch_msssim.ssim(x, y, data_range=1.0)
    if impl == "kornia":
        import kornia

        return lambda x, y: 1 - kornia.metrics.ssim(x, y, 11, max_val=1.0, padding="valid").mean()
    if impl == "torchmetrics":
        from torchmetrics.functional.image import structural_similarity_index_measure as tm

        return lambda x, y: 1 - tm(x, y, data_range=1.0)
    from fused_ssim import fused_ssim

    return lambda x, y: 1 - fused_ssim(x, y, padding="valid")


CASES = [(d, s) for d in devices() for s in shapes(d)]


@pytest.mark.parametrize("device,shape", CASES, ids=[f"{d}-{'x'.join(map(str, s))}" for d, s in CASES])
@pytest.mark.parametrize("mode", ["fwd", "fwdbwd"])
@pytest.mark.parametrize("impl", IMPLS + PEERS)
def test_ssim_loss(benchmark, impl, mode, shape, device):
    if SMOKE and impl not in ("eager", "fastiqa"):
        pytest.skip("smoke mode runs eager and fastiqa only")
    fn = implementation(impl, device)
    benchmark.group = f"ssim-loss-{mode}-{'x'.join(map(str, shape))}-{device}"
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(shape, generator=gen).to(device)
    x = (y + 0.1 * torch.randn(shape, generator=gen).to(device)).clamp(0, 1)
    step, inputs = loss_step(fn, x, y, mode)
    floor = inputs * x.numel() * x.element_size()
    fmas = (FMAS_FWD if mode == "fwd" else FMAS_FWD + FMAS_GRAD) * x.numel()
    if device == "cuda" and not SMOKE:
        step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        benchmark.extra_info["peak_extra_MiB"] = round((torch.cuda.max_memory_allocated() - base) / 2 ** 20, 1)
    slow = device == "cpu" and impl not in ("fastiqa", "compiled")
    run_case(benchmark, benchmark.group, impl, step, floor, device, rounds=5 if slow and not SMOKE else None,
             fmas=fmas)
