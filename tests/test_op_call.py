"""fastiqa/ops/_registry.py `call`: an op whose call can record no autograd graph runs below the
autograd key directly; every other call (grad needed, tracing, dispatch modes, functorch
transforms) takes the dispatcher's whole way. Both ways must give the same results and the same
autograd behaviour."""
import warnings

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import fastiqa.functional as F
from fastiqa.ops import _registry

from support import BACKENDS

CALLS = {
    "mse_loss": lambda x, y, b: F.mse_loss(x, y, backend=b),
    "psnr": lambda x, y, b: F.psnr(x, y, reduction="none", backend=b),
    "ssim": lambda x, y, b: F.ssim(x, y, reduction="none", backend=b),
}


def _pair(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 16, 17, generator=g), torch.rand(2, 3, 16, 17, generator=g)


def _full_way(fn, *args):
    """fn(*args) with every op call going through the dispatcher's autograd key."""
    direct = _registry.call
    _registry.call = lambda overload, *a: overload(*a)
    try:
        return fn(*args)
    finally:
        _registry.call = direct


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CALLS))
def test_below_autograd_equals_the_full_way(name, backend):
    x, y = _pair()
    fn = CALLS[name]
    want = _full_way(fn, x, y, backend)
    assert torch.equal(fn(x, y, backend), want)
    with torch.no_grad():
        assert torch.equal(fn(x, y, backend), want)
    with torch.inference_mode():
        assert torch.equal(fn(x, y, backend), want)
    xg = x.clone().requires_grad_()
    with torch.no_grad():
        assert fn(xg, y, backend).grad_fn is None  # grad mode off: no graph, as the full way
    out = fn(xg, y, backend)  # grad needed: the autograd kernel records the graph
    assert out.grad_fn is not None and torch.equal(out.detach(), want)
    out.sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(CALLS))
def test_traced_and_transformed_calls_keep_the_full_way(name):
    x, y = _pair(1)
    fn = CALLS[name]
    graph = make_fx(lambda a, b: fn(a, b, None))(x, y).graph
    assert any("fastiqa_C" in str(n.target) for n in graph.nodes)  # the op itself is traced
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # functorch: no batching rule, the per-sample fallback
        batched = torch.func.vmap(lambda a, b: fn(a[None], b[None], None))(x, y)
    one_by_one = torch.stack([fn(x[i:i + 1], y[i:i + 1], None) for i in range(2)])
    assert torch.allclose(batched.flatten(), one_by_one.flatten())


@pytest.mark.parametrize("name", list(CALLS))
def test_forward_mode_ad_is_an_error_not_a_zero_tangent(name):
    """No op has a forward-mode formula: a dual input must not come out as a zero derivative."""
    import torch.autograd.forward_ad as fwAD

    x, y = _pair(2)
    fn = CALLS[name]
    with fwAD.dual_level(), pytest.raises(RuntimeError, match="forward-mode"):
        fn(fwAD.make_dual(x, torch.ones_like(x)), y, None)
    with pytest.raises(RuntimeError, match="forward-mode"):
        torch.func.jvp(lambda a: fn(a, y, None), (x,), (torch.ones_like(x),))
    with fwAD.dual_level():  # a dual level without dual inputs is an ordinary call
        assert torch.equal(fn(x, y, None), fn(x, y, None))
