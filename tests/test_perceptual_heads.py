"""The perceptual op family (LPIPS / DISTS distance heads, fastiqa/ops/perceptual.py) on every
backend that runs here (the reference; the compiled CPU kernels, more of them in
tests/test_perceptual_heads_cpu.py; Triton through TRITON_INTERPRET=1), against the float64
oracle (the heads' formulas, fastiqa.backends.reference.lpips_head / dists_head, with torch
autograd): values and gradients, odd sizes, batch 1, channels_last, float32 / float64 by
fastiqa.testing's rule; gradcheck, gradgradcheck and opcheck; a zero-feature pixel."""
import pytest
import torch

from fastiqa.backends import reference as R
from fastiqa.functional import _heads
from fastiqa.ops import _dispatch
from fastiqa.testing import assert_close

BACKENDS = (["reference"] + (["cpu"] if _dispatch.available("cpu", torch.device("cpu"), "lpips_head_fwd")[0] else [])
            + (["triton"] if _dispatch.available("triton", torch.device("cpu"), "lpips_head_fwd")[0] else []))
# the smallest: one zero pixel and one other (a plane of one pixel has zero variances, where
# DISTS's texture term is c2-scaled and torch autograd of the formula loses 1e-11 to cancellation)
SHAPES = [(1, 2, 1, 2), (1, 3, 11, 11), (3, 5, 37, 53), (2, 16, 19, 8)]
HEADS = {"lpips": (_heads.lpips_head, R.lpips_head, lambda c, g: torch.rand(c, generator=g)),
         "dists": (_heads.dists_head, R.dists_head, lambda c, g: torch.rand(2, c, generator=g) / (2 * c))}


def _case(shape, dtype, seed, layout):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = torch.rand(shape, generator=g, dtype=torch.float64)
    x[0, :, 0, 0] = 0  # a pixel whose features are all zero (post-ReLU features have them)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    return [t.to(dtype).to(memory_format=fmt).requires_grad_(True) for t in (x, y)], g


def _grads(fn, x, y, go):
    v = fn(x, y)
    return (v,) + torch.autograd.grad((v * go.to(v.dtype)).sum(), (x, y))


# the interpreted Triton kernels on the two larger shapes: slow suite
CASES = [pytest.param(b, s, id=f"{b}-{'x'.join(map(str, s))}",
                      marks=[pytest.mark.slow] if b == "triton" and s[2] * s[3] > 200 else [])
         for b in BACKENDS for s in SHAPES]


@pytest.mark.parametrize("backend,shape", CASES)
@pytest.mark.parametrize("metric", list(HEADS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_head_matches_the_oracle(backend, metric, dtype, layout, shape):
    head, formula, make_w = HEADS[metric]
    (x, y), g = _case(shape, dtype, sum(shape), layout)
    w = make_w(shape[1], g)
    go = torch.randn(shape[0], generator=g, dtype=torch.float64)
    # two layers of this shape: the sum over layers is part of the head
    got = _grads(lambda a, b: head([a, 2 * a], [b, b], [w, w], backend), x, y, go)
    x64, y64 = (t.detach().double().requires_grad_(True) for t in (x, y))
    want = _grads(lambda a, b: formula([a, 2 * a], [b, b], [w.double()] * 2), x64, y64, go)
    xs, ys = (t.detach().to(dtype).requires_grad_(True) for t in (x, y))
    same = _grads(lambda a, b: formula([a, 2 * a], [b, b], [w.to(dtype)] * 2), xs, ys, go)
    for r, o, s, what in zip(got, want, same, ("value", "grad pred", "grad target")):
        if metric == "lpips" and what != "value":  # autograd of the formula is NaN at the zero pixel
            o, s, r = (t.detach().clone() for t in (o, s, r))
            for t in (o, s, r):
                t[0, :, 0, 0] = 0
        assert_close(r, o, s, what=f"{metric} {backend} {what}")
    assert got[1].dtype == dtype and got[0].dtype == dtype


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_feature_pixel_gives_a_finite_gradient(backend):
    x = torch.zeros(1, 4, 3, 3, requires_grad=True)
    y = torch.rand(1, 4, 3, 3, requires_grad=True)
    v = _heads.lpips_head([x], [y], [torch.rand(4)], backend)
    gx, gy = torch.autograd.grad(v.sum(), (x, y))
    assert torch.isfinite(gx).all() and torch.isfinite(gy).all() and gx.abs().sum() > 0
    x64 = x.detach().double().requires_grad_(True)
    ref = torch.autograd.grad(R.lpips_head([x64], [y.detach().double()], [torch.ones(4, dtype=torch.float64)])
                              .sum(), x64)[0]
    assert torch.isnan(ref).all()  # what the lpips package's formula gives there


@pytest.mark.parametrize("backend", [pytest.param(b, marks=[pytest.mark.slow] if b == "triton" else [])
                                     for b in BACKENDS])
@pytest.mark.parametrize("metric", list(HEADS))
def test_gradcheck_and_gradgradcheck(backend, metric):
    head, _, make_w = HEADS[metric]
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64).requires_grad_(True)
    y = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64).requires_grad_(True)
    w = make_w(3, g).double()
    fn = lambda a, b: head([a], [b], [w], backend)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, y))
    assert torch.autograd.gradgradcheck(fn, (x, y))


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "triton"])
def test_opcheck(backend):
    x = torch.rand(2, 3, 5, 6, requires_grad=True)
    y = torch.rand(2, 3, 5, 6, requires_grad=True)
    for metric, w in (("lpips", torch.rand(3)), ("dists", torch.rand(2, 3) / 6)):
        overload = "default" if backend == "cpu" else backend  # default: the compiled kernel on CPU tensors
        torch.library.opcheck(getattr(getattr(torch.ops.fastiqa_C, f"{metric}_head_fwd"), overload), (x, y, w))
        torch.library.opcheck(getattr(getattr(torch.ops.fastiqa_C, f"{metric}_head_bwd"), overload),
                              (x.detach(), y.detach(), w, torch.rand(2), True, True))
