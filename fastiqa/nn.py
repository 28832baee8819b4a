"""nn.Module wrappers of fastiqa.functional."""
from typing import Optional

import torch

from . import _checks, functional as F


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
        return F.charbonnier_loss(pred, target, self.eps, weight, self.reduction, backend=self.backend)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, reduction={self.reduction!r}"


class PSNRLoss(torch.nn.Module):
    """-PSNR as a loss: forward(pred, target) = -mean over images of
    10 log10(data_range^2 / (mse + eps)), one fused pass and its gradient
    (fastiqa.functional.psnr). eps > 0 keeps identical images finite."""

    def __init__(self, data_range: float = 1.0, eps: float = 1e-8, y_channel: bool = False,
                 crop_border: int = 0, backend: Optional[str] = None):
        super().__init__()
        self.data_range = _checks.positive(data_range, "data_range")
        self.eps = _checks.positive(eps, "eps")
        self.y_channel, self.crop_border, self.backend = y_channel, crop_border, backend

    def forward(self, pred, target):
        return -F.psnr(pred, target, self.data_range, "mean", self.eps, y_channel=self.y_channel,
                       crop_border=self.crop_border, backend=self.backend)

    def extra_repr(self) -> str:
        return f"data_range={self.data_range}, eps={self.eps}, y_channel={self.y_channel}, crop_border={self.crop_border}"

class GramMatrix(torch.nn.Module):
    """gram_matrix(feat) as a module: (N, C, H, W) -> (N, C, C)."""

    def __init__(self, normalize: bool = True, backend: Optional[str] = None):
        super().__init__()
        self.normalize = normalize
        self.backend = backend

    def forward(self, feat):
        return F.gram_matrix(feat, self.normalize, backend=self.backend)


from .perceptual import (  # noqa: E402,F401  (texture, perceptual, GAN and combined losses)
    CombinedLoss,
    FeatureMatchingLoss,
    GANLoss,
    PerceptualLoss,
    SequentialFeatureExtractor,
    StyleLoss,
    VGGFeatureExtractor,
)
