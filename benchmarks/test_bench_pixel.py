"""Pixel losses: fastiqa vs eager reference vs torch.compile(reference), fwd and fwd+bwd.

Floor: forward reads pred and target (2 tensors); forward+backward also writes
the gradient of pred (3 tensors). "kernel": fastiqa_C::pixel_fwd called directly (mean;
fwdbwd: with need_grad, the pass that writes the gradient the backward hands over). FMAs
(vector FP operations, an FMA counting one) per element: FMAS below. Run: pytest benchmarks/test_bench_pixel.py
"""
import pytest
import torch

import fastiqa.functional as F
from fastiqa._codes import LossKind, Reduction, WeightMode, code

from harness import IMPLS, KERNEL, SMOKE, devices, kernel_step, loss_step, run_case

EPS = 1e-3
# per element (forward, added by the gradient): l1 d = a - b, |d|, sum; sign, scale.
# mse: d, d*d + sum (one FMA); 2 d scale. charbonnier (float32, csrc/cpu/pixel_impl.h): d,
# q = d*d + eps^2, r0 = rsqrt estimate, y = q r0, e = 3 - y r0, sum += y e; d r0, * e, * scale
FMAS = {"l1": (3, 2), "mse": (2, 1), "charbonnier": (6, 3)}
SHAPES = [(2, 3, 32, 32)] if SMOKE else [(8, 3, 256, 256), (4, 3, 512, 512)]


def reference(op):
    if op == "l1":
        return lambda p, t: (p - t).abs().mean()
    if op == "mse":
        return lambda p, t: ((p - t) ** 2).mean()
    return lambda p, t: torch.sqrt((p - t) ** 2 + EPS * EPS).mean()


def fused(op):
    return {"l1": F.l1_loss, "mse": F.mse_loss, "charbonnier": lambda p, t: F.charbonnier_loss(p, t, eps=EPS)}[op]


def dtypes(device):
    return [torch.float32] if device == "cpu" else [torch.float32, torch.bfloat16, torch.float16]


CASES = [(d, dt) for d in devices() for dt in dtypes(d)]


# impl varies fastest: each case's eager, fastiqa and compiled runs follow each other
@pytest.mark.parametrize("impl", IMPLS + (KERNEL,))
@pytest.mark.parametrize("op", ["l1", "mse", "charbonnier"])
@pytest.mark.parametrize("mode", ["fwd", "fwdbwd"])
@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
@pytest.mark.parametrize("device,dtype", CASES, ids=[f"{d}-{str(t)[6:]}" for d, t in CASES])
def test_pixel_loss(benchmark, impl, op, mode, shape, device, dtype):
    if SMOKE and impl == "compiled" and op != "charbonnier":
        pytest.skip("smoke mode compiles one op only")
    benchmark.group = f"pixel-{op}-{mode}-{'x'.join(map(str, shape))}-{device}-{str(dtype)[6:]}"
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(shape, generator=gen).to(device, dtype)
    pred = (target.float() + 0.1 * torch.randn(shape, generator=gen).to(device)).to(dtype)
    if impl == KERNEL:
        args = (pred, target, None, int(WeightMode.NO_WEIGHT), 1, 1, code(LossKind, op, "kind"),
                EPS * EPS if op == "charbonnier" else 0.0, int(Reduction.MEAN), 1.0, mode == "fwdbwd")
        step, inputs = kernel_step(torch.ops.fastiqa_C.pixel_fwd.default, *args), 2 if mode == "fwd" else 3
    else:
        fn = {"fastiqa": fused(op), "eager": reference(op), "compiled": torch.compile(reference(op))}[impl]
        step, inputs = loss_step(fn, pred, target, mode)
    fmas = (FMAS[op][0] if mode == "fwd" else sum(FMAS[op])) * pred.numel()
    run_case(benchmark, benchmark.group, impl, step, inputs * pred.numel() * pred.element_size(), device, fmas=fmas)
