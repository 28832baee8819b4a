"""User-facing functions: validate, normalise the arguments, call the op.

Pixel losses take pred and target of one shape (any float dtype, any layout),
an optional weight map broadcastable to them ((N,1,H,W) or (N,C,H,W)), and a
reduction: "mean" (sum / numel), "sum", "none" (the weighted loss map) or
"weighted_mean" (sum(w * l) / sum(w), w broadcast to the input's shape).
Reduced losses come back in float32 (float64 for float64 inputs); maps and
gradients in the input's dtype. backend= forces "cpu", "cuda", "triton" or
"reference" (default: the fastest available, see fastiqa.info()).
"""
from typing import Optional

from torch import Tensor

from . import _checks
from .backends import reference as _reference
from .ops import pixel as _pixel

PIXEL_REDUCTIONS = tuple(_pixel.REDUCTIONS)

__all__ = ["l1_loss", "mse_loss", "charbonnier_loss", "ssim"]


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


def charbonnier_loss(pred: Tensor, target: Tensor, eps: float = 1e-3, weight: Optional[Tensor] = None,
                     reduction: str = "mean", *, backend: Optional[str] = None) -> Tensor:
    """Charbonnier loss sqrt((pred - target)^2 + eps^2), a smooth L1 (eps > 0).

    BasicSR's variant sqrt(d^2 + eps) with eps=1e-12 is fastiqa.compat.basicsr.CharbonnierLoss.
    """
    eps = _checks.positive(eps, "eps")
    return _pixel_loss(pred, target, weight, "charbonnier", eps * eps, reduction, backend)


SSIM_PADDINGS = _reference.SSIM_PADDINGS
SSIM_REDUCTIONS = ("mean", "none", "per_channel", "map")


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0, win_size: int = 11, win_sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03, padding: str = "valid", reduction: str = "mean") -> Tensor:
    """Structural similarity of x and y, (N, C, H, W) images in [0, data_range].

    padding: "valid" (Wang's MATLAB, BasicSR, pytorch_msssim, published tables),
    "same_zero" (fused-ssim, 3DGS) or "same_reflect" (kornia, torchmetrics).
    reduction: "mean", "none" (one value per image), "per_channel" (N, C), "map".
    For now this runs the plain PyTorch formula (the reference backend).
    """
    x, y = _checks.pair(x, y, "x", "y")
    if x.dim() != 4:
        raise ValueError(f"x and y must be (N, C, H, W) images, got shape {tuple(x.shape)}")
    if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 1 or win_size % 2 == 0:
        raise ValueError(f"win_size must be a positive odd integer, got {win_size!r}")
    _checks.positive(win_sigma, "win_sigma")
    _checks.positive(data_range, "data_range")
    _checks.choice(padding, "padding", SSIM_PADDINGS)
    _checks.choice(reduction, "reduction", SSIM_REDUCTIONS)
    if padding == "valid" and min(x.shape[-2:]) < win_size:
        raise ValueError(f"images of size {tuple(x.shape[-2:])} are smaller than the {win_size}x{win_size} window")
    if padding == "same_reflect" and min(x.shape[-2:]) <= win_size // 2:
        raise ValueError(f"reflect padding needs images larger than {win_size // 2} pixels, got {tuple(x.shape[-2:])}")
    return _reference.ssim(x, y, data_range, win_size, win_sigma, k1, k2, padding, reduction)
