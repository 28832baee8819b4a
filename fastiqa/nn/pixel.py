"""Pixel-loss modules: L1Loss, MSELoss, CharbonnierLoss (fastiqa.functional's pixel losses)."""
from typing import Optional

import torch

from .. import _checks
from .. import functional as F


class _PixelLoss(torch.nn.Module):
    def __init__(self, reduction: str = "mean", backend: Optional[str] = None):
        super().__init__()
        self.reduction = _checks.choice(reduction, "reduction", F.PIXEL_REDUCTIONS)
        self.backend = backend

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class L1Loss(_PixelLoss):
    """|pred - target|, reduced; forward(pred, target, weight=None)."""

    def forward(self, pred, target, weight=None):
        return F.l1_loss(pred, target, weight, self.reduction, backend=self.backend)


class MSELoss(_PixelLoss):
    """(pred - target)^2, reduced; forward(pred, target, weight=None)."""

    def forward(self, pred, target, weight=None):
        return F.mse_loss(pred, target, weight, self.reduction, backend=self.backend)


class CharbonnierLoss(_PixelLoss):
    """sqrt((pred - target)^2 + eps^2), reduced; forward(pred, target, weight=None)."""

    def __init__(self, eps: float = 1e-3, reduction: str = "mean", backend: Optional[str] = None):
        super().__init__(reduction, backend)
        self.eps = _checks.positive(eps, "eps")

    def forward(self, pred, target, weight=None):
        return F.charbonnier_loss(pred, target, weight, self.reduction, eps=self.eps, backend=self.backend)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, reduction={self.reduction!r}"
