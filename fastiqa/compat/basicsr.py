"""BasicSR-compatible losses: `from fastiqa.compat.basicsr import L1Loss` in place of
`from basicsr.losses.basic_loss import L1Loss` gives the same values and gradients.

BasicSR's conventions kept here:
  * constructor (loss_weight=1.0, reduction='mean'); the result is loss_weight * loss;
  * CharbonnierLoss eps=1e-12 added unsquared: sqrt(d^2 + eps);
  * weighted mean: with a weight and reduction='mean' the sum of w * l is divided by
    weight.sum(), times C when the weight has one channel (basicsr weight_reduce_loss);
  * an unsupported reduction raises ValueError.
"""
import torch

from .. import _checks
from ..functional import _pixel

# BasicSR's PerceptualLoss (style term on the fused Gram op) and GANLoss: the same
# constructor arguments and forward signatures as basicsr.losses.basic_loss / gan_loss.
from ..nn import GANLoss, PerceptualLoss  # noqa: F401
from ..nn.combined import register_loss_types

_REDUCTIONS = ("none", "mean", "sum")


def _basicsr_loss(pred, target, weight, kind, c, reduction, backend):
    pred, target = _checks.pair(pred, target)
    if weight is None:
        return _pixel.pixel_loss(pred, target, None, kind, c, reduction, 1.0, backend)
    weight = _checks.weight_map(weight, pred)
    if weight.dim() != pred.dim() or weight.shape[1] not in (1, pred.shape[1]):
        raise ValueError(
            f"weight must have pred's number of dims and 1 or C channels (BasicSR rule), got "
            f"{tuple(weight.shape)} for pred {tuple(pred.shape)}"
        )
    if reduction != "mean":
        return _pixel.pixel_loss(pred, target, weight, kind, c, reduction, 1.0, backend)
    # BasicSR divides by weight.sum() * (C if weight.size(1) == 1 else 1); the kernel sums the
    # weight as broadcast to pred's shape, so scale that sum back to BasicSR's divisor.
    per_channel = pred.shape[1] if weight.shape[1] == 1 else 1
    norm_scale = per_channel * weight.numel() / max(pred.numel(), 1)
    return _pixel.pixel_loss(pred, target, weight, kind, c, "weighted_mean", norm_scale, backend)


class _BasicSRLoss(torch.nn.Module):
    kind = "l1"

    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean", *, backend=None):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"Unsupported reduction mode: {reduction}. Supported ones are: {list(_REDUCTIONS)}")
        self.loss_weight = loss_weight
        self.reduction = reduction
        self.backend = backend

    def _c(self) -> float:
        return 0.0

    def forward(self, pred, target, weight=None, **kwargs):
        """pred, target: (N, C, H, W); weight: (N, C, H, W) or (N, 1, H, W)."""
        loss = _basicsr_loss(pred, target, weight, self.kind, self._c(), self.reduction, self.backend)
        return loss if self.loss_weight == 1.0 else self.loss_weight * loss


class L1Loss(_BasicSRLoss):
    """BasicSR L1Loss: loss_weight * l1(pred, target) (mean absolute error)."""

    kind = "l1"


class MSELoss(_BasicSRLoss):
    """BasicSR MSELoss: loss_weight * mse(pred, target)."""

    kind = "mse"


class CharbonnierLoss(_BasicSRLoss):
    """BasicSR CharbonnierLoss: loss_weight * sqrt((pred - target)^2 + eps), eps=1e-12."""

    kind = "charbonnier"

    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean", eps: float = 1e-12, *, backend=None):
        super().__init__(loss_weight, reduction, backend=backend)
        self.eps = _checks.positive(eps, "eps")

    def _c(self) -> float:
        return self.eps


# BasicSR's names mean BasicSR's formulas in option dicts (CombinedLoss.from_options)
register_loss_types(L1Loss, MSELoss, CharbonnierLoss, override=True)
