"""Every op under torch.compile(fullgraph=True): dynamic=True and the default (automatic
dynamic shapes), three image sizes each (odd and even sides, three batch sizes), values
and the gradients of both inputs equal to eager, and at most one graph per shape class:
one under dynamic=True, two under the default (the static first compile, then one
recompile with dynamic sizes). Nothing in the Python layer may branch on a symbolic
size or option (README.md, "The op contract").

The compile backend is aot_eager: it traces the fake kernels and the autograd formulas
with symbolic sizes as inductor does, without inductor's C++ compile of each graph
(tens of seconds on 2 cores); test_inductor_dynamic runs inductor itself (slow).
Batch sizes start at 2: PyTorch specialises size 1 dimensions by design.
"""
import pytest
import torch
from torch._dynamo.utils import counters

import fastiqa.functional as F

SIZES = ((2, 3, 24, 26), (3, 3, 31, 29), (4, 3, 40, 37))


def _weighted(t, period=7):
    """sum(t * w) with weights 1..period along the flattened t: a scalar whose gradient
    is not uniform (built inside the compiled function, from t's symbolic size)."""
    w = (torch.arange(t.numel(), dtype=t.dtype, device=t.device) % period + 1).reshape(t.shape)
    return (t * w).sum()


OPS = {
    "charbonnier_loss": lambda a, b: F.charbonnier_loss(a, b, eps=1e-2) + F.charbonnier_loss(a, b),
    "l1_loss": lambda a, b: F.l1_loss(a, b) + _weighted(F.l1_loss(a, b, reduction="none")),
    "mse_loss": lambda a, b: F.mse_loss(a, b, b[:, :1] + 0.5, "weighted_mean") + F.mse_loss(a, b, reduction="sum"),
    "ssim": lambda a, b: F.ssim(a, b) + _weighted(F.ssim(a, b, reduction="map", padding="same_reflect")),
    "ssim_loss": lambda a, b: F.ssim_loss(a, b, padding="same_zero") + _weighted(F.ssim_loss(a, b, reduction="none")),
    "l1_ssim_loss": lambda a, b: F.l1_ssim_loss(a, b, alpha=0.3) + _weighted(F.l1_ssim_loss(a, b, reduction="none")),
    "ms_ssim": lambda a, b: _weighted(F.ms_ssim(a, b, reduction="per_channel", win_size=3, weights=(0.3, 0.3, 0.4))),
    "psnr": lambda a, b: F.psnr(a, b, eps=1e-8) + _weighted(F.psnr(a, b, reduction="none", y_channel=True,
                                                                   crop_border=2)),
    # issue 19's options: the pooled PSNR, ssim.m's downsampling by a given factor (downsample="auto"
    # derives the factor from the size: it specialises on it), the uniform window, sample covariance,
    # per-axis windows
    "issue19_options": lambda a, b: F.psnr(a, b, reduction="pooled", eps=1e-8)
    + F.ssim(a, b, downsample=2) + _weighted(F.ssim_loss(a, b, reduction="none", window="uniform", win_size=7,
                                                         use_sample_covariance=True, downsample=3))
    + F.ssim(a, b, win_size=(5, 3), win_sigma=(1.0, 1.5), padding="same_reflect"),  # a per-axis window
    # issue 19 item 4: the components, scalars and maps (a loss on each backpropagates)
    "ssim_components": lambda a, b: sum(F.ssim(a, b, return_components=True, use_sample_covariance=True))
    + sum(_weighted(m, 5 + k) for k, m in enumerate(F.ssim(a, b, reduction="map", padding="same_zero",
                                                           return_components=True))),
    "style_loss": lambda a, b: F.style_loss(a, b) + F.style_loss(a, b, "l2") + F.style_loss(a, b, "fro")
    + F.style_loss(a, target_gram=F.gram_matrix(b).float() * 0.9, criterion="l2"),
    "gram_matrix": lambda a, b: _weighted(F.gram_matrix(a)) + _weighted(F.gram_matrix(b, normalize=False), 8),
}
# aot_eager compile of MS-SSIM's scales and their backward takes ~5 s per mode on 2 cores
SLOW = {"ms_ssim"}
# the default mode in the fast suite for these (1-4 s each); every op in the slow suite
FAST_DEFAULT = {"charbonnier_loss", "ssim_loss", "psnr"}


def _graphs_for_sizes(fn, dynamic):
    """Compiles fn, runs it on SIZES next to eager (values, both gradients); returns the
    number of graphs compiled."""
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(fn, fullgraph=True, dynamic=dynamic, backend="aot_eager")
    for shape in SIZES:
        a, b = torch.rand(shape), torch.rand(shape)
        ea, eb = a.clone().requires_grad_(), b.clone().requires_grad_()
        ca, cb = a.clone().requires_grad_(), b.clone().requires_grad_()
        want = fn(ea, eb)
        want.backward()
        got = compiled(ca, cb)
        got.backward()
        torch.testing.assert_close(got, want, msg=lambda m: f"value at {shape}: {m}")
        torch.testing.assert_close(ca.grad, ea.grad, msg=lambda m: f"pred gradient at {shape}: {m}")
        torch.testing.assert_close(cb.grad, eb.grad, msg=lambda m: f"target gradient at {shape}: {m}")
    return counters["stats"]["unique_graphs"]


def _params(fast):
    return [name if name in fast else pytest.param(name, marks=pytest.mark.slow) for name in OPS]


@pytest.mark.parametrize("name", _params(set(OPS) - SLOW))
def test_dynamic_true_one_graph(name):
    assert _graphs_for_sizes(OPS[name], dynamic=True) == 1


@pytest.mark.parametrize("name", _params(FAST_DEFAULT))
def test_default_dynamic_one_recompile(name):
    assert _graphs_for_sizes(OPS[name], dynamic=None) <= 2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["charbonnier_loss", "ssim_loss", "psnr"])
def test_inductor_dynamic(name):
    """The default backend (inductor) with dynamic=True: one graph for three sizes.

    Inductor's on-disk caches are off here: an artifact cached by an earlier process can
    carry a guard of inductor's own (seen: H < W from autograd_cache.evaluate_guards) and
    recompile the second size, which says nothing about fastiqa's ops."""
    from torch._inductor import config as inductor_config

    torch._dynamo.reset()
    counters.clear()
    fn = OPS[name]
    compiled = torch.compile(fn, fullgraph=True, dynamic=True)
    with inductor_config.patch(force_disable_caches=True):
        _compare_sizes(fn, compiled)
    assert counters["stats"]["unique_graphs"] == 1


def _compare_sizes(fn, compiled):
    for shape in SIZES:
        a, b = torch.rand(shape), torch.rand(shape)
        ea, ca = a.clone().requires_grad_(), a.clone().requires_grad_()
        want = fn(ea, b)
        want.backward()
        got = compiled(ca, b)
        got.backward()
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(ca.grad, ea.grad)


@pytest.mark.parametrize("dtype", [pytest.param(torch.float16, marks=pytest.mark.slow), torch.bfloat16])
def test_half_inputs_dynamic(dtype):
    """Half inputs (the float16 forward gradient is stored times a power of two of the
    pixel count): one graph for three sizes, gradients as eager's."""
    fn = OPS["ssim_loss"]
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(fn, fullgraph=True, dynamic=True, backend="aot_eager")
    for shape in SIZES:
        a, b = torch.rand(shape, dtype=dtype), torch.rand(shape, dtype=dtype)
        ea, ca = a.clone().requires_grad_(), a.clone().requires_grad_()
        fn(ea, b).backward()
        compiled(ca, b).backward()
        torch.testing.assert_close(ca.grad, ea.grad)
    assert counters["stats"]["unique_graphs"] == 1


def test_option_as_traced_argument():
    """An option passed into the compiled function (a symbolic float under dynamic=True,
    where math.isfinite broke the graph) gives eager's value for each value passed."""
    torch._dynamo.reset()
    fn = lambda a, b, eps, dr: F.charbonnier_loss(a, b, eps=eps) + F.psnr(a, b, dr)  # noqa: E731
    compiled = torch.compile(fn, fullgraph=True, dynamic=True, backend="aot_eager")
    a, b = torch.rand(2, 3, 16, 17), torch.rand(2, 3, 16, 17)
    for eps, dr in ((0.5, 1.0), (0.25, 2.0)):
        torch.testing.assert_close(compiled(a, b, eps, dr), fn(a, b, eps, dr))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_positive_check_keeps_its_message(bad):
    a, b = torch.rand(2, 3, 8, 9), torch.rand(2, 3, 8, 9)
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0, got "):
        F.charbonnier_loss(a, b, eps=bad)
    with pytest.raises(ValueError, match=r"data_range must be a finite number > 0, got "):
        F.psnr(a, b, bad)
    # without fullgraph, dynamo runs the check eagerly (with fullgraph it reports the raise
    # as unsupported: PyTorch's rule for exceptions leaving a fullgraph region)
    torch._dynamo.reset()
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0, got "):
        torch.compile(lambda x, y: F.charbonnier_loss(x, y, eps=bad), dynamic=True, backend="aot_eager")(a, b)


@pytest.mark.parametrize("bad", [-1e-9, float("inf"), float("nan")])
def test_non_negative_check_keeps_its_message(bad):
    a, b = torch.rand(2, 3, 8, 9), torch.rand(2, 3, 8, 9)
    with pytest.raises(ValueError, match=r"k1 must be a finite number >= 0, got "):
        F.ssim(a, b, win_size=3, k1=bad)
    assert torch.isfinite(F.ssim(a, b, win_size=3, k1=0.0))
