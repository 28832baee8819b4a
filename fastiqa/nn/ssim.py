"""SSIM-family modules: SSIMLoss, MSSSIMLoss, L1SSIMLoss (fastiqa.functional's SSIM family);
every SSIM option of the functions (window, use_sample_covariance, downsample where offered)."""
from typing import Optional

import torch

from .. import _checks
from .. import functional as F
from ..functional import _downsample, _ssim_masked


class _SSIMBase(torch.nn.Module):
    def __init__(self, data_range: float = 1.0, win_size: int = 11, win_sigma: float = 1.5, k1: float = 0.01,
                 k2: float = 0.03, padding: str = "valid", reduction: str = "mean", backend: Optional[str] = None,
                 window: str = "gaussian", use_sample_covariance: bool = False):
        super().__init__()
        data_range, win_size, win_sigma, k1, k2 = _checks.ssim_options(data_range, win_size, win_sigma, k1, k2, padding)
        self.data_range, self.win_size, self.win_sigma = data_range, win_size, win_sigma
        self.k1, self.k2, self.padding, self.reduction, self.backend = k1, k2, padding, reduction, backend
        self.window = _checks.choice(window, "window", F.SSIM_WINDOWS)
        self.use_sample_covariance = _checks.flag(use_sample_covariance, "use_sample_covariance")

    def _kwargs(self):
        return dict(data_range=self.data_range, win_size=self.win_size, win_sigma=self.win_sigma, k1=self.k1,
                    k2=self.k2, padding=self.padding, reduction=self.reduction, backend=self.backend,
                    window=self.window, use_sample_covariance=self.use_sample_covariance)

    def extra_repr(self) -> str:
        extra = (f", window={self.window!r}" if self.window != "gaussian" else "") + (
            ", use_sample_covariance=True" if self.use_sample_covariance else "")
        return (f"data_range={self.data_range}, win_size={self.win_size}, win_sigma={self.win_sigma}, "
                f"padding={self.padding!r}, reduction={self.reduction!r}" + extra)


class SSIMLoss(_SSIMBase):
    """1 - SSIM(pred, target); reduction "mean" or "none" (per image). The gradient is
    computed in the forward pass (fused), backward only scales it. downsample: None,
    "auto" or an integer, ssim.m's pre-pass (fastiqa.functional.ssim)."""

    def __init__(self, data_range: float = 1.0, win_size: int = 11, win_sigma: float = 1.5, k1: float = 0.01,
                 k2: float = 0.03, padding: str = "valid", reduction: str = "mean", backend: Optional[str] = None,
                 downsample=None, window: str = "gaussian", use_sample_covariance: bool = False,
                 nan_policy: str = "propagate"):
        _checks.choice(reduction, "reduction", ("mean", "none"))
        super().__init__(data_range, win_size, win_sigma, k1, k2, padding, reduction, backend, window,
                         use_sample_covariance)
        self.downsample = _downsample.check(downsample)
        self.nan_policy = _checks.choice(nan_policy, "nan_policy", _ssim_masked.NAN_POLICIES)

    def forward(self, pred, target, mask=None):
        """mask: optional weights (fastiqa.functional.ssim's mask)."""
        return F.ssim_loss(pred, target, downsample=self.downsample, mask=mask, nan_policy=self.nan_policy,
                           **self._kwargs())

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", downsample={self.downsample!r}" if self.downsample is not None else "") \
            + (f", nan_policy={self.nan_policy!r}" if self.nan_policy != "propagate" else "")


class MSSSIMLoss(_SSIMBase):
    """1 - MS-SSIM(pred, target) (5 scales, Wang 2003 weights unless given); downsample:
    ssim.m's pre-pass once before the first scale (fastiqa.functional.ms_ssim)."""

    def __init__(self, data_range: float = 1.0, win_size: int = 11, win_sigma: float = 1.5, k1: float = 0.01,
                 k2: float = 0.03, weights=None, padding: str = "valid", reduction: str = "mean",
                 backend: Optional[str] = None, downsample=None, window: str = "gaussian",
                 use_sample_covariance: bool = False):
        _checks.choice(reduction, "reduction", ("mean", "none"))
        super().__init__(data_range, win_size, win_sigma, k1, k2, padding, reduction, backend, window,
                         use_sample_covariance)
        self.weights = None if weights is None else _checks.scale_weights(weights)
        self.downsample = _downsample.check(downsample)

    def forward(self, pred, target):
        return 1 - F.ms_ssim(pred, target, weights=self.weights, downsample=self.downsample, **self._kwargs())

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", downsample={self.downsample!r}" if self.downsample is not None else "")


class L1SSIMLoss(_SSIMBase):
    """(1 - alpha) * L1 + alpha * (1 - SSIM), fused (3DGS photometric loss, zero "same" padding)."""

    def __init__(self, alpha: float = 0.2, data_range: float = 1.0, win_size: int = 11, win_sigma: float = 1.5,
                 k1: float = 0.01, k2: float = 0.03, padding: str = "same_zero", reduction: str = "mean",
                 backend: Optional[str] = None, window: str = "gaussian", use_sample_covariance: bool = False,
                 nan_policy: str = "propagate"):
        _checks.choice(reduction, "reduction", ("mean", "none"))
        super().__init__(data_range, win_size, win_sigma, k1, k2, padding, reduction, backend, window,
                         use_sample_covariance)
        self.alpha = _checks.in_unit_interval(alpha, "alpha")
        self.nan_policy = _checks.choice(nan_policy, "nan_policy", _ssim_masked.NAN_POLICIES)

    def forward(self, pred, target, mask=None):
        """mask: optional weights (fastiqa.functional.l1_ssim_loss's mask)."""
        return F.l1_ssim_loss(pred, target, alpha=self.alpha, mask=mask, nan_policy=self.nan_policy,
                              **self._kwargs())

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, " + super().extra_repr() + (
            f", nan_policy={self.nan_policy!r}" if self.nan_policy != "propagate" else "")
