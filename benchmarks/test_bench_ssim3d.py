"""3-D SSIM loss (1 - SSIM of (N, C, D, H, W) volumes, mean, 11x11x11 Gaussian, valid padding)
forward+backward on the CPU (and on CUDA where a GPU is visible: csrc/cuda/ssim_volume.cu):
fastiqa vs the eager separable reference, torch.compile of it and pytorch_msssim's 5-D SSIM
(issue 19 item 1's bar on the CPU: >= 10x pytorch_msssim and >= 4x torch.compile of the
reference, on the avx2 and avx512 variants), in the same run.

    FASTIQA_CPU_ISA=avx2 pytest benchmarks/test_bench_ssim3d.py
    FASTIQA_CPU_ISA=avx512 pytest benchmarks/test_bench_ssim3d.py
    pytest benchmarks/test_bench_ssim3d.py --benchmark-disable   # smoke (FASTIQA_BENCH_SMOKE=1): small volumes

Floor: forward reads x and y; forward+backward also writes the gradient of x (3 tensors).
FMAs per voxel of the separable window: forward 5 statistics x 3 passes x 11 taps + the 3
products; the gradient adds 4 coefficient maps x 3 passes x 11 taps.
"""
import importlib.util

import pytest
import torch

import fastiqa.functional as F
from fastiqa.backends import reference as R

from harness import IMPLS, SMOKE, devices, loss_step, run_case

WIN = 11
FMAS_FWD, FMAS_GRAD = 5 * 3 * WIN + 3, 4 * 3 * WIN  # per voxel


def shapes(device):
    if SMOKE:
        return [(2, 1, 24, 32, 32)]
    # CUDA also: a 128 x 256 x 256 training volume (the perf model's ssim3d rows, benchmarks/perf_model.py)
    return [(2, 1, 64, 128, 128)] + ([(1, 1, 128, 256, 256)] if device == "cuda" else [])


CASES = [(d, s) for d in devices() for s in shapes(d)]


def _reference(x, y):
    return 1 - R.ssim(x, y)


def implementation(impl):
    if impl == "fastiqa":
        return F.ssim_loss
    if impl == "eager":
        return _reference
    if impl == "compiled":
        return torch.compile(_reference)
    if importlib.util.find_spec(impl) is None:
        pytest.skip(f"{impl} not installed here")
    import pytorch_msssim

    return lambda x, y: 1 - pytorch_msssim.ssim(x, y, data_range=1.0)


@pytest.mark.parametrize("device,shape", CASES, ids=[f"{d}-{'x'.join(map(str, s))}" for d, s in CASES])
@pytest.mark.parametrize("impl", IMPLS + ("pytorch_msssim",))
def test_ssim3d_loss(benchmark, impl, shape, device):
    if SMOKE and impl not in ("eager", "fastiqa"):
        pytest.skip("smoke mode runs eager and fastiqa only")
    fn = implementation(impl)
    benchmark.group = f"ssim3d-loss-fwdbwd-{'x'.join(map(str, shape))}-{device}"
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(shape, generator=gen).to(device)
    x = (y + 0.1 * torch.randn(shape, generator=gen).to(device)).clamp(0, 1)
    step, inputs = loss_step(fn, x, y, "fwdbwd")
    floor = inputs * x.numel() * x.element_size()
    slow = device == "cpu" and impl not in ("fastiqa", "compiled")
    run_case(benchmark, benchmark.group, impl, step, floor, device, rounds=3 if slow and not SMOKE else None,
             fmas=(FMAS_FWD + FMAS_GRAD) * x.numel())
