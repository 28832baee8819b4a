"""SSIM loss (1 - SSIM, mean, valid padding, 11x11 Gaussian) forward and forward+backward:
fastiqa vs the eager separable reference, torch.compile of it, pytorch_msssim, kornia,
torchmetrics (when installed), and fused-ssim on CUDA (when installed).

    pytest benchmarks/test_bench_ssim.py --benchmark-columns=median,rounds --benchmark-sort=name

extra_info: the floor (bytes that must move: x and y read once, the gradient written once)
and, on CUDA, the peak extra memory of the step. Timings belong here, never in tests/.
"""
import importlib.util

import pytest
import torch

import fastiqa.functional as F
from fastiqa.backends import reference as R

from conftest import devices

CPU_SHAPES = [(8, 3, 256, 256), (4, 3, 512, 512)]
GPU_SHAPES = CPU_SHAPES + [(5, 3, 1080, 1920)]


def _have(mod):
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


def _ref_loss(x, y):
    return 1 - R.ssim(x, y)


_compiled = {}


def _compiled_ref(device):
    if device not in _compiled:
        _compiled[device] = torch.compile(_ref_loss)
    return _compiled[device]


def candidates(device):
    c = {
        "fastiqa": lambda x, y: 1 - F.ssim(x, y),
        "reference": _ref_loss,
        "reference_compiled": lambda x, y: _compiled_ref(device)(x, y),
    }
    if _have("pytorch_msssim"):
        import pytorch_msssim

        c["pytorch_msssim"] = lambda x, y: 1 - pytorch_msssim.ssim(x, y, data_range=1.0)
    if _have("kornia"):
        import kornia

        c["kornia"] = lambda x, y: 1 - kornia.metrics.ssim(x, y, 11, max_val=1.0, padding="valid").mean()
    if _have("torchmetrics"):
        from torchmetrics.functional.image import structural_similarity_index_measure as tm

        c["torchmetrics"] = lambda x, y: 1 - tm(x, y, data_range=1.0)
    if device == "cuda" and _have("fused_ssim"):
        from fused_ssim import fused_ssim

        c["fused_ssim"] = lambda x, y: 1 - fused_ssim(x, y, padding="valid")
    return c


def _cases():
    for device in devices():
        for shape in (GPU_SHAPES if device == "cuda" else CPU_SHAPES):
            for name in ("fastiqa", "reference", "reference_compiled", "pytorch_msssim", "kornia", "torchmetrics",
                         "fused_ssim"):
                yield device, shape, name


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


@pytest.mark.parametrize("direction", ["fwd", "fwd_bwd"])
@pytest.mark.parametrize("device,shape,name", list(_cases()),
                         ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v))
def test_ssim_loss(benchmark, device, shape, name, direction):
    fns = candidates(device)
    if name not in fns:
        pytest.skip(f"{name} not installed here")
    if device == "cpu" and shape[0] * shape[2] * shape[3] > 2_000_000 and name in ("reference", "pytorch_msssim",
                                                                                   "kornia", "torchmetrics"):
        rounds = 2
    else:
        rounds = 5
    fn = fns[name]
    x = torch.rand(shape, device=device)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    x.requires_grad_(direction == "fwd_bwd")

    def step():
        if direction == "fwd":
            with torch.no_grad():
                out = fn(x, y)
        else:
            x.grad = None
            out = fn(x, y)
            out.backward()
        _sync(device)
        return out

    step()  # warm-up (and compilation)
    step()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        benchmark.extra_info["peak_extra_MiB"] = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    elem = x.element_size()
    n = x.numel()
    floor = 2 * n * elem + (n * elem if direction == "fwd_bwd" else 0)
    benchmark.extra_info["floor_bytes"] = floor
    benchmark.group = f"ssim-loss {direction} {device} {'x'.join(map(str, shape))}"
    benchmark.pedantic(step, rounds=rounds, iterations=1, warmup_rounds=0)
