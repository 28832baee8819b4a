"""Pixel losses: L1, MSE, Charbonnier, each optionally weighted.

pred and target of one shape (any float dtype, any layout), an optional weight
map broadcastable to them ((N,1,H,W) or (N,C,H,W)), and a reduction: "mean"
(sum / numel), "sum", "none" (the weighted loss map) or "weighted_mean"
(sum(w * l) / sum(w), w broadcast to the input's shape).
"""
from typing import Optional

from torch import Tensor

from .. import _checks
from .._codes import Reduction
from ..ops import pixel as _pixel

PIXEL_REDUCTIONS = ("none", "sum", "mean", "weighted_mean")
assert set(PIXEL_REDUCTIONS) <= {m.name.lower() for m in Reduction}


def _pixel_loss(pred, target, weight, kind, c, reduction, backend):
    pred, target = _checks.pair(pred, target)
    _checks.choice(reduction, "reduction", PIXEL_REDUCTIONS)
    weight = _checks.weight_map(weight, pred)
    return _pixel.pixel_loss(pred, target, weight, kind, c, reduction, 1.0, backend)


def l1_loss(pred: Tensor, target: Tensor, weight: Optional[Tensor] = None, reduction: str = "mean",
            *, backend: Optional[str] = None) -> Tensor:
    """Mean absolute error |pred - target| (fused; gradient sign(pred - target))."""
    return _pixel_loss(pred, target, weight, "l1", 0.0, reduction, backend)


def mse_loss(pred: Tensor, target: Tensor, weight: Optional[Tensor] = None, reduction: str = "mean",
             *, backend: Optional[str] = None) -> Tensor:
    """Mean squared error (pred - target)^2."""
    return _pixel_loss(pred, target, weight, "mse", 0.0, reduction, backend)


def charbonnier_loss(pred: Tensor, target: Tensor, weight: Optional[Tensor] = None, reduction: str = "mean",
                     *, eps: float = 1e-3, backend: Optional[str] = None) -> Tensor:
    """Charbonnier loss sqrt((pred - target)^2 + eps^2), a smooth L1 (eps > 0).

    BasicSR's variant sqrt(d^2 + eps) with eps=1e-12 is fastiqa.compat.basicsr.CharbonnierLoss.
    """
    eps = _checks.positive(eps, "eps")
    return _pixel_loss(pred, target, weight, "charbonnier", eps * eps, reduction, backend)
