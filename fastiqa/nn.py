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
        return F.charbonnier_loss(pred, target, weight, self.reduction, eps=self.eps, backend=self.backend)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, reduction={self.reduction!r}"


class _SSIMBase(torch.nn.Module):
    def __init__(self, data_range: float = 1.0, win_size: int = 11, win_sigma: float = 1.5, k1: float = 0.01,
                 k2: float = 0.03, padding: str = "valid", reduction: str = "mean", backend: Optional[str] = None):
        super().__init__()
        data_range, win_size, win_sigma, k1, k2 = _checks.ssim_options(data_range, win_size, win_sigma, k1, k2, padding)
        self.data_range, self.win_size, self.win_sigma = data_range, win_size, win_sigma
        self.k1, self.k2, self.padding, self.reduction, self.backend = k1, k2, padding, reduction, backend

    def _kwargs(self):
        return dict(data_range=self.data_range, win_size=self.win_size, win_sigma=self.win_sigma, k1=self.k1,
                    k2=self.k2, padding=self.padding, reduction=self.reduction, backend=self.backend)

    def extra_repr(self) -> str:
        return (f"data_range={self.data_range}, win_size={self.win_size}, win_sigma={self.win_sigma}, "
                f"padding={self.padding!r}, reduction={self.reduction!r}")


class SSIMLoss(_SSIMBase):
    """1 - SSIM(pred, target); reduction "mean" or "none" (per image). The gradient is
    computed in the forward pass (fused), backward only scales it."""

    def __init__(self, data_range: float = 1.0, win_size: int = 11, win_sigma: float = 1.5, k1: float = 0.01,
                 k2: float = 0.03, padding: str = "valid", reduction: str = "mean", backend: Optional[str] = None):
        _checks.choice(reduction, "reduction", ("mean", "none"))
        super().__init__(data_range, win_size, win_sigma, k1, k2, padding, reduction, backend)

    def forward(self, pred, target):
        return F.ssim_loss(pred, target, **self._kwargs())


class MSSSIMLoss(_SSIMBase):
    """1 - MS-SSIM(pred, target) (5 scales, Wang 2003 weights unless given)."""

    def __init__(self, data_range: float = 1.0, win_size: int = 11, win_sigma: float = 1.5, k1: float = 0.01,
                 k2: float = 0.03, weights=None, padding: str = "valid", reduction: str = "mean",
                 backend: Optional[str] = None):
        _checks.choice(reduction, "reduction", ("mean", "none"))
        super().__init__(data_range, win_size, win_sigma, k1, k2, padding, reduction, backend)
        self.weights = None if weights is None else _checks.scale_weights(weights)

    def forward(self, pred, target):
        return 1 - F.ms_ssim(pred, target, weights=self.weights, **self._kwargs())


class L1SSIMLoss(_SSIMBase):
    """(1 - alpha) * L1 + alpha * (1 - SSIM), fused (3DGS photometric loss, zero "same" padding)."""

    def __init__(self, alpha: float = 0.2, data_range: float = 1.0, win_size: int = 11, win_sigma: float = 1.5,
                 k1: float = 0.01, k2: float = 0.03, padding: str = "same_zero", reduction: str = "mean",
                 backend: Optional[str] = None):
        _checks.choice(reduction, "reduction", ("mean", "none"))
        super().__init__(data_range, win_size, win_sigma, k1, k2, padding, reduction, backend)
        self.alpha = _checks.in_unit_interval(alpha, "alpha")

    def forward(self, pred, target):
        return F.l1_ssim_loss(pred, target, alpha=self.alpha, **self._kwargs())

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, " + super().extra_repr()


class PSNRLoss(torch.nn.Module):
    """-PSNR as a loss: forward(pred, target) = -mean over images of
    10 log10(data_range^2 / (mse + eps)), one fused pass and its gradient
    (fastiqa.functional.psnr). eps > 0 keeps identical images finite."""

    def __init__(self, data_range: float = 1.0, eps: float = 1e-8, y_channel: bool = False,
                 crop_border: int = 0, backend: Optional[str] = None):
        super().__init__()
        self.data_range = _checks.positive(data_range, "data_range")
        self.eps = _checks.positive(eps, "eps")
        self.y_channel, self.backend = _checks.flag(y_channel, "y_channel"), backend
        self.crop_border = _checks.integer(crop_border, "crop_border", "an integer >= 0")
        if self.crop_border < 0:
            raise ValueError(f"crop_border must be an integer >= 0, got {crop_border!r}")

    def forward(self, pred, target):
        return -F.psnr(pred, target, self.data_range, "mean", eps=self.eps, y_channel=self.y_channel,
                       crop_border=self.crop_border, backend=self.backend)

    def extra_repr(self) -> str:
        return f"data_range={self.data_range}, eps={self.eps}, y_channel={self.y_channel}, crop_border={self.crop_border}"

class GramMatrix(torch.nn.Module):
    """gram_matrix(feat) as a module: (N, C, H, W) -> (N, C, C)."""

    def __init__(self, normalize: bool = True, backend: Optional[str] = None):
        super().__init__()
        self.normalize = _checks.flag(normalize, "normalize")
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
