"""Pixel-loss sums as accurate as torch.sum at every size (issue 22 item 2).

A float32 running sum over a chunk of 2^15 elements loses ~2^11 u; the kernels
sum compensated lanes and then pairwise (csrc/cpu/pixel_impl.h; csrc/cuda/pixel.cu
keeps a thread's sequential share short and compensates the finalize). Each case
judges the float32 result by fastiqa.testing's rule against the float64 oracle with
PyTorch's own float32 result as the allowance, on every CPU backend and ISA level.
The data sit away from zero (the loss is > 1), so the rule is relative.
The sizes past 2^24 are in the slow suite; the largest (> 2^31 elements, float16
inputs, 4.3 GB) checks a constant loss whose exact value is known.
"""
import numpy as np
import pytest
import torch

import fastiqa.functional as F
from fastiqa import _ext, cpu_isa
from fastiqa.testing import assert_close

from support import cpu_backends

LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss, "charbonnier": F.charbonnier_loss}
FAST_SIZES = [1, 7, 1000, 2**15 + 3, 2**20 + 5]
SLOW_SIZES = [2**24 + 1, 3 * 2**25 + 17]


def _backends(n):
    # the Triton interpreter runs one program per 4096 elements at ~2 ms each: small sizes only
    return [b for b in cpu_backends("pixel") if b != "triton" or n <= 2**16]


def _levels(backend):
    return cpu_isa.available() if backend == "cpu" else [None]


def _inputs(n, seed, weighted):
    g = torch.Generator().manual_seed(seed)
    pred = 3.0 + torch.rand(n, generator=g)
    target = torch.rand(n, generator=g)
    if not weighted:
        return pred, target, None
    # a per-row weight broadcast over the columns: the (N, 1, ...) weight of the issue
    cols = min(7, n)
    rows = n // cols
    weight = torch.rand(rows, 1, generator=g)
    return pred[: rows * cols].reshape(rows, cols), target[: rows * cols].reshape(rows, cols), weight


def _torch_loss(name, pred, target, weight, reduction):
    d = pred - target
    loss = d.abs() if name == "l1" else d * d if name == "mse" else torch.sqrt(d * d + 1e-6)
    if weight is None:
        return loss.sum() if reduction == "sum" else loss.mean()
    w = weight.expand_as(loss)
    return (loss * w).sum() / w.sum()


def _check(name, n, reduction, weighted, seed):
    pred, target, weight = _inputs(n, seed, weighted)
    oracle = _torch_loss(name, pred.double(), target.double(), None if weight is None else weight.double(),
                         reduction)
    same = _torch_loss(name, pred, target, weight, reduction)
    for backend in _backends(pred.numel()):
        for level in _levels(backend):
            ctx = cpu_isa.using(level) if level else _nullcontext()
            with ctx:
                got = LOSSES[name](pred, target, weight=weight, reduction=reduction, backend=backend)
            assert_close(got, oracle, same, what=f"{name} {reduction} n={n} {backend} {level or ''}")


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("n", FAST_SIZES)
@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("reduction,weighted", [("mean", False), ("sum", False), ("weighted_mean", True)])
def test_sum_accuracy(name, n, reduction, weighted):
    _check(name, n, reduction, weighted, seed=n)


@pytest.mark.slow
@pytest.mark.parametrize("n", SLOW_SIZES)
@pytest.mark.parametrize("reduction,weighted", [("mean", False), ("weighted_mean", True)])
def test_sum_accuracy_large(n, reduction, weighted):
    _check("charbonnier", n, reduction, weighted, seed=n)


def test_constant_mean_is_exact():
    """16M equal terms: the compensated sum returns the term itself (PyTorch, and so the
    reference backend, is 8e-7 off)."""
    z = torch.zeros(2**24 + 3)
    term = float(np.sqrt(np.float32(1e-6)))  # sqrt(0 + eps^2) in float32
    for backend in [b for b in _backends(z.numel()) if b != "reference"]:
        for level in _levels(backend):
            with (cpu_isa.using(level) if level else _nullcontext()):
                got = float(F.charbonnier_loss(z, z, backend=backend))
            assert abs(got - term) <= 2 * np.finfo(np.float32).eps * term, (backend, level, got, term)


@pytest.mark.slow
@pytest.mark.skipif(not _ext.LOADED, reason="compiled kernels not built")
def test_constant_mean_past_2_to_31():
    """> 2^31 float16 elements (4.3 GB, pred is target): the mean of equal float32 terms."""
    z = torch.zeros(2**31 + 9, dtype=torch.float16)
    term = float(np.sqrt(np.float32(1e-6)))
    got = float(F.charbonnier_loss(z, z, backend="cpu"))
    del z
    assert abs(got - term) <= 4 * np.finfo(np.float32).eps * term, (got, term)
