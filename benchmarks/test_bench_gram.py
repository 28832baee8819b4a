"""Gram family benchmarks: Gram matrix and style loss, forward and forward+backward,
fastiqa vs the eager reference (two bmm, BasicSR's formula) vs torch.compile of it,
in the same run, grouped by op, mode and shape.

    pytest benchmarks/test_bench_gram.py                          # full shapes
    pytest benchmarks/ --benchmark-disable                        # smoke: small shapes, compile backend "eager"
    (FASTIQA_BENCH_SMOKE=1 also selects the small shapes)

Shapes are VGG relu3 / relu4 features (8x256x64x64, 4x512x32x32), float32 (and
bfloat16 on CUDA). extra_info records the reference's flops (2 N C^2 K per Gram),
the matmul ceiling measured here (one bmm of the same size) and, when timed,
the achieved GFLOP/s and its fraction of the ceiling (counted on the reference's flops:
fastiqa does fewer, so the fraction can exceed 1), and ratio_eager, the eager
reference's mean over this one's, measured in the same run (eager runs first).
"""

import os
import time

import pytest
import torch
from machine_limits import limits, roofline

import fastiqa.functional as F
from fastiqa.backends import reference as R

from harness import record

# demo-*: the images themselves as features, the shape `fastiqa demo` times (C = 3, K = 65536)
SHAPES = {"8x256x64x64": (8, 256, 64, 64), "4x512x32x32": (4, 512, 32, 32), "demo-8x3x256x256": (8, 3, 256, 256)}
SMOKE_SHAPES = {"8x256x64x64": (2, 16, 8, 8), "4x512x32x32": (2, 32, 4, 4), "demo-8x3x256x256": (2, 3, 16, 16)}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
IMPLS = ("eager", "fastiqa", "compiled")  # eager first: the others' ratios need it
_EAGER = {}


def _smoke(config) -> bool:
    return os.environ.get("FASTIQA_BENCH_SMOKE", "0") == "1" or bool(config.getoption("benchmark_disable", False))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


_CEILINGS = {}


def matmul_ceiling(n, c, k, dtype, device):
    """GFLOP/s of one torch.bmm (N, C, K) x (N, K, C), best of a few runs."""
    key = (n, c, k, dtype, device.type)
    if key not in _CEILINGS:
        a = torch.randn(n, c, k, dtype=dtype, device=device)
        bt = a.transpose(1, 2)
        torch.bmm(a, bt)
        _sync(device)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            torch.bmm(a, bt)
            _sync(device)
            best = min(best, time.perf_counter() - t0)
        _CEILINGS[key] = 2.0 * n * c * c * k / best / 1e9
    return _CEILINGS[key]


def _fn(op, impl, smoke):
    if op == "gram":
        fast = lambda x, y: F.gram_matrix(x).sum()  # noqa: E731
        ref = lambda x, y: R.gram_matrix(x).sum()  # noqa: E731
    else:
        fast = lambda x, y: F.style_loss(x, y, "l1")  # noqa: E731
        ref = lambda x, y: R.style_loss(x, y, "l1")  # noqa: E731
    if impl == "fastiqa":
        return fast
    if impl == "eager":
        return ref
    return torch.compile(ref, backend="eager" if smoke else "inductor", dynamic=False)


CASES = [
    ("gram", "fwd", ""),
    ("gram", "fwd_bwd", "x"),
    ("style", "fwd", ""),
    ("style", "fwd_bwd", "x"),
    ("style", "fwd_bwd", "xy"),
]


@pytest.mark.parametrize("impl", IMPLS)  # varies fastest: a case's three impls run together, eager first
@pytest.mark.parametrize("device_name", DEVICES)
@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("op,mode,grads", CASES, ids=[f"{o}-{m}{'-' + g if g else ''}" for o, m, g in CASES])
def test_bench_gram(benchmark, request, impl, op, mode, grads, shape_name, dtype_name, device_name):
    device = torch.device(device_name)
    dtype = getattr(torch, dtype_name)
    if dtype == torch.bfloat16 and device.type != "cuda":
        pytest.skip("bfloat16 is benchmarked on CUDA only")
    smoke = _smoke(request.config)
    n, c, h, w = (SMOKE_SHAPES if smoke else SHAPES)[shape_name]
    grads_tag = f"-{grads}" if grads else ""
    benchmark.group = f"{op}-{mode}{grads_tag} {shape_name} {dtype_name} {device_name}"
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, h, w, generator=gen).to(device=device, dtype=dtype)
    y = torch.randn(n, c, h, w, generator=gen).to(device=device, dtype=dtype)
    fn = _fn(op, impl, smoke)
    if mode == "fwd":

        def step():
            with torch.no_grad():
                out = fn(x, y)
            _sync(device)
            return out
    else:
        x.requires_grad_("x" in grads)
        y.requires_grad_("y" in grads)

        def step():
            x.grad = None
            y.grad = None
            out = fn(x, y)
            out.backward()
            _sync(device)
            return out

    step()  # warm-up (and compilation)
    k = h * w
    grams = 1 if op == "gram" else 2
    # reference: one bmm per Gram forward, two per input that requires grad backward
    flops = 2.0 * n * c * c * k * (grams + (2 * len(grads) if mode == "fwd_bwd" else 0))
    ceiling = matmul_ceiling(n, c, k, dtype, device)
    benchmark.extra_info.update(
        {
            "impl": impl,
            "shape": [n, c, h, w],
            "dtype": dtype_name,
            "device": device_name,
            "threads": torch.get_num_threads(),
            "reference_flops": flops,
            "matmul_ceiling_gflops": round(ceiling, 1),
        }
    )
    benchmark.pedantic(step, rounds=3 if not smoke else 1, iterations=1, warmup_rounds=0)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        mean = stats.stats.mean
        if impl == "eager":
            _EAGER[benchmark.group] = mean
        if mean > 0 and benchmark.group in _EAGER:
            benchmark.extra_info["ratio_eager"] = round(_EAGER[benchmark.group] / mean, 3)
        # bytes: the features read once, the gradients written once; FMAs: the reference's flops / 2
        tensors = (1 if op == "gram" else 2) + (len(grads) if mode == "fwd_bwd" else 0)
        floor_bytes = n * c * k * x.element_size() * tensors
        median = stats.stats.median
        lim = limits(device_name)
        roof = roofline(floor_bytes, flops / 2, median, lim)
        benchmark.extra_info.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in roof.items()})
        record(
            benchmark.group,
            impl,
            device_name,
            median,
            benchmark.extra_info.get("ratio_eager", float("nan")),
            floor_bytes=floor_bytes,
            rounds=3,
            fmas=flops / 2,
            roof=roof,
            lim=lim,
        )
        if mean > 0:
            benchmark.extra_info["gflops_on_reference_flops"] = round(flops / mean / 1e9, 1)
            benchmark.extra_info["fraction_of_matmul_ceiling"] = round(flops / mean / 1e9 / ceiling, 3)
