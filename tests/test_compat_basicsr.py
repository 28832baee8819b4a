"""fastiqa.compat.basicsr against a transcription of BasicSR's published loss formulas
(basicsr/losses/basic_loss.py and loss_util.py: weight_reduce_loss)."""
import pytest
import torch

from fastiqa.compat import basicsr

from support import cpu_backends

BACKENDS = cpu_backends("pixel")


# --- transcription of BasicSR -------------------------------------------------
def _weight_reduce_loss(loss, weight=None, reduction="mean"):
    if weight is not None:
        assert weight.dim() == loss.dim()
        assert weight.size(1) == 1 or weight.size(1) == loss.size(1)
        loss = loss * weight
    if weight is None or reduction == "sum":
        if reduction == "mean":
            loss = loss.mean()
        elif reduction == "sum":
            loss = loss.sum()
    elif reduction == "mean":
        if weight.size(1) > 1:
            weight = weight.sum()
        else:
            weight = weight.sum() * loss.size(1)
        loss = loss.sum() / weight
    return loss


def bsr_l1(pred, target, weight=None, reduction="mean"):
    return _weight_reduce_loss(torch.nn.functional.l1_loss(pred, target, reduction="none"), weight, reduction)


def bsr_mse(pred, target, weight=None, reduction="mean"):
    return _weight_reduce_loss(torch.nn.functional.mse_loss(pred, target, reduction="none"), weight, reduction)


def bsr_charbonnier(pred, target, weight=None, reduction="mean", eps=1e-12):
    return _weight_reduce_loss(torch.sqrt((pred - target) ** 2 + eps), weight, reduction)
# -------------------------------------------------------------------------------


CASES = [
    (basicsr.L1Loss, bsr_l1, {}),
    (basicsr.MSELoss, bsr_mse, {}),
    (basicsr.CharbonnierLoss, bsr_charbonnier, {}),
    (basicsr.CharbonnierLoss, bsr_charbonnier, {"eps": 1e-6}),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls,formula,kwargs", CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("wshape", [None, "n1hw", "nchw", "11hw"])
def test_same_values_and_gradients(backend, cls, formula, kwargs, reduction, wshape):
    n, c, h, w = (2, 3, 11, 13)
    # float32-representable values, so both sides see the same inputs
    pred64 = torch.rand(n, c, h, w).double()
    target64 = torch.rand(n, c, h, w).double()
    weight64 = None
    if wshape is not None:
        weight64 = torch.rand({"n1hw": (n, 1, h, w), "nchw": (n, c, h, w), "11hw": (1, 1, h, w)}[wshape]).double()
    loss_weight = 0.5
    module = cls(loss_weight=loss_weight, reduction=reduction, backend=backend, **kwargs)
    p = pred64.float().requires_grad_(True)
    t = target64.float().requires_grad_(True)
    out = module(p, t, weight=None if weight64 is None else weight64.float())
    p64 = pred64.clone().requires_grad_(True)
    t64 = target64.clone().requires_grad_(True)
    ref = loss_weight * formula(p64, t64, weight64, reduction, **kwargs)
    torch.testing.assert_close(out.double(), ref.detach(), rtol=1e-5, atol=1e-7)
    g = torch.randn(ref.shape, dtype=torch.float64)
    got = torch.autograd.grad(out, (p, t), g.to(out.dtype))
    want = torch.autograd.grad(ref, (p64, t64), g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-7)


def test_constructor_defaults_match_basicsr():
    assert basicsr.CharbonnierLoss().eps == 1e-12
    m = basicsr.L1Loss()
    assert m.loss_weight == 1.0 and m.reduction == "mean"


def test_weight_channel_rule_enforced():
    p, t = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    with pytest.raises(ValueError, match="1 or C channels"):
        basicsr.L1Loss()(p, t, torch.rand(3, 4, 4))  # broadcastable, but not BasicSR's (N,1|C,H,W)
    with pytest.raises(ValueError, match="does not broadcast"):
        basicsr.L1Loss()(p, t, torch.rand(2, 2, 4, 4))
