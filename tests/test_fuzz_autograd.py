"""Property-based fuzzing of the autograd patterns training code uses, over every op
and backend: retain_graph with repeated autograd.grad, create_graph (a gradient
penalty), in-place edits after forward, two threads calling one op, gradients
accumulated across calls. The reference in float64 is the oracle."""
import threading

import pytest
import torch
from _fuzz_cases import float64_same, fuzz_settings, same_dtype
from _op_matrix import OPS
from hypothesis import given
from hypothesis import strategies as st

from fastiqa.testing import assert_close

from support import BACKENDS, tol

PATTERNS = ("retain_graph", "create_graph", "inplace_after_forward", "threads", "accumulate")
FAST = [b for b in BACKENDS if b != "triton"]


@st.composite
def pattern_cases(draw, backends):
    name = draw(st.sampled_from(sorted(OPS)))
    op = OPS[name]
    side = draw(st.integers(max(op.min_side, 5), max(op.min_side, 5) + 4))
    return dict(name=name, backend=draw(st.sampled_from(backends)), pattern=draw(st.sampled_from(PATTERNS)),
                dtype=draw(st.sampled_from((torch.float32, torch.float64))),
                reduction=draw(st.sampled_from([r for r in op.reductions if r != "map"] or ["mean"])),
                shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), side, side),
                seed=draw(st.integers(0, 2 ** 31 - 1)))


def _scalar(op, x, y, case):
    out = op.run(x, y, case["reduction"], case["backend"], {})
    return out.sum() if out.dim() else out


def _oracle_grad(op, x, y, case, create_graph=False):
    xo = x.detach().double().requires_grad_()
    out = op.ref(xo, y.detach().double(), case["reduction"], {})
    (g,) = torch.autograd.grad(out.sum(), xo, create_graph=create_graph)
    return xo, g


def _inputs(case):
    gen = torch.Generator().manual_seed(case["seed"])
    x = torch.rand(case["shape"], generator=gen, dtype=torch.float64) * 0.5 + 0.25
    y = (x + 0.1 * torch.randn(case["shape"], generator=gen, dtype=torch.float64)).clamp(0, 1)
    return x.to(case["dtype"]).requires_grad_(), y.to(case["dtype"])


def _same_precision_grad(op, x, y, case, oracle):
    dtype = same_dtype(x.dtype)
    xs = x.detach().to(dtype).requires_grad_()
    (g,) = torch.autograd.grad(op.ref(xs, y.to(dtype), case["reduction"], {}).sum(), xs)
    return float64_same(oracle, g) if x.dtype == torch.float64 else g


def _check(result, oracle, same, what):
    """fastiqa.testing's rule; float64 has no measurable reference error (its same-precision
    reference is the oracle): the suite's float64 tolerance (support.tol) there."""
    if result.dtype == torch.float64:
        rtol, atol = tol(torch.float64)
        torch.testing.assert_close(result, oracle.to(result.dtype), rtol=rtol, atol=atol, msg=what)
    else:
        assert_close(result, oracle, same, what=what)


def check_pattern(case):
    op = OPS[case["name"]]
    x, y = _inputs(case)
    _, want = _oracle_grad(op, x, y, case)
    same = _same_precision_grad(op, x, y, case, want)
    pattern = case["pattern"]
    if pattern == "retain_graph":
        loss = _scalar(op, x, y, case)
        (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
        g1.mul_(-3.0)  # a caller editing its gradient in place must not change the next one
        (g2,) = torch.autograd.grad(loss, x, retain_graph=True)
        (g3,) = torch.autograd.grad(loss, x)
        assert len({g1.data_ptr(), g2.data_ptr(), g3.data_ptr()}) == 3
        _check(g2, want, same, what="second autograd.grad")
        _check(g3, want, same, what="third autograd.grad")
    elif pattern == "create_graph":
        (g,) = torch.autograd.grad(_scalar(op, x, y, case), x, create_graph=True)
        assert g.grad_fn is not None, "create_graph=True gave a gradient without graph"
        _check(g, want, same, what="first derivative under create_graph")
        v = torch.rand_like(g)
        (h,) = torch.autograd.grad((g * v).sum(), x)
        xo, go = _oracle_grad(op, x, y, case, create_graph=True)
        (ho,) = torch.autograd.grad((go * v.double()).sum(), xo)
        xs = x.detach().to(same_dtype(x.dtype)).requires_grad_()
        (gs,) = torch.autograd.grad(op.ref(xs, y.to(xs.dtype), case["reduction"], {}).sum(), xs, create_graph=True)
        (hs,) = torch.autograd.grad((gs * v.to(xs.dtype)).sum(), xs)
        _check(h, ho, float64_same(ho, hs) if x.dtype == torch.float64 else hs, what="second derivative")
    elif pattern == "inplace_after_forward":
        y = y.clone()
        loss = _scalar(op, x, y, case)
        value = float(loss.detach())
        y.add_(0.5)  # edited after forward: backward raises like PyTorch or uses the forward's values
        try:
            (g,) = torch.autograd.grad(loss, x)
        except RuntimeError as e:
            assert "inplace" in str(e) or "in-place" in str(e), e
        else:
            _check(g, want, same, what="gradient after an in-place edit of target")
        assert float(loss.detach()) == value
    elif pattern == "threads":
        results = [None, None]

        def work(i):
            xi = x.detach().clone().requires_grad_()
            _scalar(op, xi, y, case).backward()
            results[i] = xi.grad

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for g in results:
            _check(g, want, same, what="gradient from a thread")
    else:  # accumulate: x.grad keeps the sum over calls
        _scalar(op, x, y, case).backward()
        first = x.grad.clone()
        _scalar(op, x, y, case).backward()
        _check(x.grad, 2 * want, 2 * same, what="gradient accumulated over two calls")
        _check(first, want, same, what="gradient of the first call")


@fuzz_settings(default=100)
@given(case=pattern_cases(FAST))
def test_fuzz_autograd_patterns(case):
    check_pattern(case)


@pytest.mark.slow
@fuzz_settings(default=300, large_share=0.15)
@given(case=pattern_cases(FAST))
def test_fuzz_autograd_patterns_large(case):
    check_pattern(case)
