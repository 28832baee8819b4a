"""Pixel losses (L1, MSE, Charbonnier) on every backend against the float64 oracle."""

import itertools

import pytest
import torch
from _pixel_oracle import loss as oracle

import fastiqa.functional as F
from fastiqa import nn as fnn
from fastiqa.testing import assert_close

from support import backend_devices, cpu_backends, ids, overload

BACKEND_DEVICES = backend_devices("pixel")
BACKENDS = cpu_backends("pixel")
BD_IDS = ids(BACKEND_DEVICES)

KINDS = ("l1", "mse", "charbonnier")
EPS = 1e-3
SHAPES = [(1, 1, 1, 1), (3, 3, 37, 53), (2, 5, 64, 97), (67, 3, 5, 7)]
SMALL_SHAPES = [(1, 1, 1, 1), (3, 3, 37, 53)]  # for the Triton interpreter


def fast(kind, pred, target, weight=None, reduction="mean", backend=None):
    if kind == "l1":
        return F.l1_loss(pred, target, weight, reduction, backend=backend)
    if kind == "mse":
        return F.mse_loss(pred, target, weight, reduction, backend=backend)
    return F.charbonnier_loss(pred, target, weight, reduction, eps=EPS, backend=backend)


def shapes_for(backend, device="cpu"):
    return SMALL_SHAPES if (backend == "triton" and device == "cpu") else SHAPES


def on(device, *tensors):
    return [None if t is None else t.to(device) for t in tensors]


def check(kind, backend, pred, target, weight=None, reduction="mean", grad_pred=True, grad_target=True):
    """Compares value and both gradients with the float64 oracle, grad_output random; the
    error allowed is derived from the reference's own error in the input dtype
    (fastiqa.testing.assert_close)."""
    dtype = pred.dtype
    p = pred.detach().clone().requires_grad_(grad_pred)
    t = target.detach().clone().requires_grad_(grad_target)
    out = fast(kind, p, t, weight, reduction, backend)
    p64 = pred.detach().cpu().double().requires_grad_(True)
    t64 = target.detach().cpu().double().requires_grad_(True)
    w64 = weight.cpu().double() if weight is not None else None
    ref = oracle(kind, p64, t64, EPS * EPS, w64, reduction)
    pd = pred.detach().cpu().clone().requires_grad_(True)  # the reference in the input dtype
    td = target.detach().cpu().clone().requires_grad_(True)
    ref_d = oracle(kind, pd, td, EPS * EPS, weight.cpu() if weight is not None else None, reduction)
    assert out.shape == ref.shape
    if reduction == "none":
        assert out.dtype == dtype
        assert out.stride() == pred.stride() or not pred.is_contiguous()
    else:
        assert out.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert out.device == pred.device
    assert_close(out, ref, ref_d, what=f"{kind} {reduction} value")
    if not (grad_pred or grad_target):
        return
    g = torch.randn(out.shape, dtype=torch.float64)
    inputs = [x for x, need in ((p, grad_pred), (t, grad_target)) if need]
    got = torch.autograd.grad(out, inputs, g.to(out.device, out.dtype))
    want = torch.autograd.grad(ref, [p64, t64], g)
    want_d = torch.autograd.grad(ref_d, [pd, td], g.to(ref_d.dtype))
    needs = (grad_pred, grad_target)
    want = [w for w, need in zip(want, needs) if need]
    want_d = [w for w, need in zip(want_d, needs) if need]
    for a, b, b_d in zip(got, want, want_d):
        assert a.dtype == dtype and a.shape == pred.shape and a.device == pred.device
        assert_close(a, b, b_d, what=f"{kind} {reduction} gradient")


def rand_pair(shape, dtype=torch.float32):
    pred = torch.rand(shape, dtype=torch.float64)
    target = (pred + 0.2 * torch.randn(shape, dtype=torch.float64)).clamp(0, 1)
    return pred.to(dtype), target.to(dtype)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES, ids=BD_IDS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "weighted_mean"])
def test_matches_reference(backend, device, kind, reduction):
    for shape in shapes_for(backend, device):
        check(kind, backend, *on(device, *rand_pair(shape)), reduction=reduction)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES, ids=BD_IDS)
@pytest.mark.parametrize("kind", KINDS)
def test_float64_and_one_sided_grads(backend, device, kind):
    pred, target = on(device, *rand_pair((2, 3, 11, 13), torch.float64))
    check(kind, backend, pred, target, grad_pred=True, grad_target=False)
    check(kind, backend, pred, target, reduction="sum", grad_pred=False, grad_target=True)
    check(kind, backend, pred, target, reduction="none", grad_pred=False, grad_target=False)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES, ids=BD_IDS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("wshape", ["n1hw", "nchw", "11hw", "chw"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_weight_maps(backend, device, kind, wshape, layout):
    n, c, h, w = (2, 3, 9, 14) if backend == "triton" else (3, 5, 17, 23)
    pred, target = on(device, *rand_pair((n, c, h, w)))
    shape = {"n1hw": (n, 1, h, w), "nchw": (n, c, h, w), "11hw": (1, 1, h, w), "chw": (c, h, w)}[wshape]
    weight = torch.rand(shape, device=device)
    if layout == "channels_last":
        pred = pred.contiguous(memory_format=torch.channels_last)
        target = target.contiguous(memory_format=torch.channels_last)
        if weight.dim() == 4:
            weight = weight.contiguous(memory_format=torch.channels_last)
    for reduction in ("mean", "sum", "none", "weighted_mean"):
        check(kind, backend, pred, target, weight, reduction)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES, ids=BD_IDS)
def test_layouts_and_strides(backend, device):
    base_p, base_t = on(device, *rand_pair((2, 4, 20, 26)))
    cases = {
        "channels_last": (
            base_p.contiguous(memory_format=torch.channels_last),
            base_t.contiguous(memory_format=torch.channels_last),
        ),
        "mixed": (base_p.contiguous(memory_format=torch.channels_last), base_t),
        "sliced": (base_p[:, 1:3, 2:, ::2], base_t[:, 1:3, 2:, ::2]),
        "transposed": (base_p.transpose(2, 3), base_t.transpose(2, 3)),
        "expanded": (base_p[:1].expand(2, -1, -1, -1), base_t),
        "batch_slice": (base_p[1:], base_t[1:]),
        "3d": (base_p.flatten(2), base_t.flatten(2)),
    }
    for name, (p, t) in cases.items():
        for kind in KINDS:
            for reduction in ("mean", "none"):
                check(kind, backend, p, t, reduction=reduction)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES, ids=BD_IDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_low_precision(backend, device, dtype, kind):
    pred, target = on(device, *rand_pair((2, 3, 19, 21), dtype))
    for reduction in ("sum", "none"):
        check(kind, backend, pred, target, reduction=reduction)
    weight = torch.rand(2, 1, 19, 21, device=device).to(dtype)
    check(kind, backend, pred, target, weight, "weighted_mean")


def test_low_precision_sum_does_not_overflow():
    pred = torch.full((4, 3, 128, 128), 60.0, dtype=torch.float16)
    target = torch.zeros_like(pred)
    out = F.mse_loss(pred, target, reduction="sum")
    assert out.dtype == torch.float32 and torch.isfinite(out)
    assert out.item() == pytest.approx(3600.0 * pred.numel(), rel=1e-6)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES, ids=BD_IDS)
def test_grad_output_scaling(backend, device):
    pred, target = rand_pair((2, 3, 15, 17))
    x = pred.clone().to(device).requires_grad_(True)
    (3.5 * F.charbonnier_loss(x, target.to(device), backend=backend)).backward()
    x64 = pred.double().requires_grad_(True)
    (3.5 * oracle("charbonnier", x64, target.double(), EPS * EPS)).backward()
    torch.testing.assert_close(x.grad.cpu().double(), x64.grad, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES, ids=BD_IDS)
def test_empty_like_torch(backend, device):
    for shape in [(0, 3, 4, 4), (2, 3, 0, 5)]:
        p = torch.rand(shape, device=device, requires_grad=True)
        t = torch.rand(shape, device=device)
        for reduction, torch_fn in (("mean", torch.nn.functional.l1_loss), ("sum", torch.nn.functional.l1_loss)):
            got = F.l1_loss(p, t, reduction=reduction, backend=backend)
            want = torch_fn(p, t, reduction=reduction)
            assert got.shape == want.shape
            assert torch.equal(torch.isnan(got), torch.isnan(want))
            if not torch.isnan(want):
                assert got.item() == want.item()
            (g,) = torch.autograd.grad(got, p)
            assert g.shape == p.shape
        assert F.mse_loss(p, t, reduction="none", backend=backend).shape == p.shape


@pytest.mark.parametrize("backend,device", [bd for bd in BACKEND_DEVICES if bd != ("triton", "cpu")])
def test_deterministic_bitwise(backend, device):
    pred, target = on(device, *rand_pair((4, 3, 256, 256)))
    x = pred.clone().requires_grad_(True)
    runs = []
    for _ in range(3):
        x.grad = None
        out = F.charbonnier_loss(x, target, backend=backend)
        out.backward()
        runs.append((out.detach().clone(), x.grad.clone()))
    for out, grad in runs[1:]:
        assert torch.equal(out, runs[0][0]) and torch.equal(grad, runs[0][1])


def test_gradient_buffer_reuse_is_invisible():
    """The CPU buffer pool must never hand out memory that someone can still see."""
    pred, target = rand_pair((4, 3, 128, 128))
    x = pred.clone().requires_grad_(True)
    F.l1_loss(x, target).backward()
    kept = x.grad  # the user keeps the gradient of step 1
    kept_view = x.grad.view(-1)[:10]
    snapshot = kept.clone()
    x.grad = None
    F.mse_loss(x, target * 0.5).backward()
    assert torch.equal(kept, snapshot) and torch.equal(kept_view, snapshot.view(-1)[:10])
    assert not torch.equal(x.grad, kept)
    # retain_graph: the graph's saved buffer and the accumulated gradient stay apart
    x.grad = None
    loss = F.charbonnier_loss(x, target)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward(retain_graph=True)
    loss.backward()
    torch.testing.assert_close(x.grad, 3 * first)
    g1 = torch.autograd.grad(F.l1_loss(x, target), x)[0]
    g2 = torch.autograd.grad(F.l1_loss(x, target), x)[0]
    assert g1.data_ptr() != g2.data_ptr() and torch.equal(g1, g2)


def test_weight_requiring_grad_gets_its_gradient():
    pred, target = rand_pair((2, 3, 8, 9))
    w = torch.rand(2, 1, 8, 9, requires_grad=True)
    w64 = w.detach().double().requires_grad_(True)
    for reduction in ("mean", "weighted_mean", "none"):
        out = F.l1_loss(pred, target, w, reduction)
        ref = oracle("l1", pred.double(), target.double(), 0.0, w64, reduction)
        torch.testing.assert_close(out.double(), ref.detach(), rtol=1e-5, atol=1e-7)
        (gw,) = torch.autograd.grad(out.sum(), w)
        (gw64,) = torch.autograd.grad(ref.sum(), w64)
        torch.testing.assert_close(gw.double(), gw64, rtol=1e-5, atol=1e-7)


def test_modules():
    pred, target = rand_pair((2, 3, 8, 9))
    for module, kind in (
        (fnn.L1Loss(), "l1"),
        (fnn.MSELoss(reduction="sum"), "mse"),
        (fnn.CharbonnierLoss(eps=EPS), "charbonnier"),
    ):
        red = module.reduction
        torch.testing.assert_close(
            module(pred, target).double(), oracle(kind, pred.double(), target.double(), EPS * EPS, None, red)
        )
    assert "eps" in repr(fnn.CharbonnierLoss())


def test_mixed_dtypes_promote():
    pred, target = rand_pair((2, 3, 8, 9))
    out = F.l1_loss(pred.half(), target)
    ref = oracle("l1", pred.half().double(), target.double())
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-7)


def test_autocast_cpu():
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    x = torch.rand(2, 3, 16, 16)
    target = torch.rand(2, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(x)
        assert out.dtype == torch.bfloat16
        loss = F.charbonnier_loss(out, target)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()
    ref = oracle("charbonnier", out.detach().double(), target.double(), EPS * EPS)
    torch.testing.assert_close(loss.double(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind):
    backends = [b for b in BACKENDS if b != "triton"]
    for backend, reduction in itertools.product(backends, ("mean", "none", "weighted_mean")):
        pred = torch.rand(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
        target = (pred.detach() + 0.3 * torch.randn_like(pred)).requires_grad_(True)
        weight = torch.rand(2, 1, 5, 6, dtype=torch.float64)
        fn = lambda p, t: fast(kind, p, t, weight, reduction, backend)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (pred, target), eps=1e-6, atol=1e-6)


def test_opcheck():
    from fastiqa._codes import LossKind as K
    from fastiqa._codes import Reduction as Red
    from fastiqa._codes import WeightMode as W

    pred, target = rand_pair((2, 3, 5, 6))
    pred.requires_grad_(True)
    for backend in [b for b in BACKENDS if b != "triton"]:
        for args in (
            (pred, target, None, W.NO_WEIGHT, 1, 1, K.CHARBONNIER, 1e-6, Red.MEAN, 1.0, True),
            (pred, target, None, W.NO_WEIGHT, 1, 1, K.L1, 0.0, Red.NONE, 1.0, True),
            (pred, target, torch.rand(2, 1, 5, 6), W.PLANE, 3, 30, K.MSE, 0.0, Red.WEIGHTED_MEAN, 1.0, True),
        ):
            torch.library.opcheck(overload("pixel_fwd", backend), args)
        torch.library.opcheck(overload("pixel_bwd", backend),
                              (torch.rand(2, 3, 5, 6), torch.tensor(2.0), torch.tensor(0.5), True, True))


def test_torch_compile_fullgraph():
    torch._dynamo.reset()

    def step(pred, target, weight):
        return F.charbonnier_loss(pred, target) + F.l1_loss(pred, target, weight, "weighted_mean")

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    pred, target = rand_pair((2, 3, 16, 17))
    weight = torch.rand(2, 1, 16, 17)
    x1 = pred.clone().requires_grad_(True)
    x2 = pred.clone().requires_grad_(True)
    compiled(x1, target, weight).backward()
    step(x2, target, weight).backward()
    torch.testing.assert_close(x1.grad, x2.grad)
