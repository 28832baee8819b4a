"""pytorch_msssim-compatible API: `from fastiqa.compat.pytorch_msssim import ssim, ms_ssim, SSIM, MS_SSIM`
in place of `from pytorch_msssim import ...` gives the same values (valid Gaussian window,
data_range=255 by default, K=(0.01, 0.03), 2x2 average pooling between MS-SSIM scales) from
the fused kernels, with gradients for both inputs and no NaN gradient where a MS-SSIM term is
clamped to 0.

Volumes: 5-d (N, C, D, H, W) input takes the separable 3-D window and 2x2x2 pooling, as
pytorch_msssim (spatial_dims=3 on the modules). Differences: `win` may only be the Gaussian
that win_size and win_sigma describe (other windows raise), and an axis smaller than the
window raises ValueError (pytorch_msssim skips blurring it, with a warning).
"""

from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .. import functional as F


def _prepare(X, Y, win_size, win):
    if not X.shape == Y.shape:
        raise ValueError(f"Input images should have the same dimensions, but got {X.shape} and {Y.shape}.")
    for d in range(len(X.shape) - 1, 1, -1):
        X = X.squeeze(dim=d)
        Y = Y.squeeze(dim=d)
    if len(X.shape) not in (4, 5):
        raise ValueError(f"Input images should be 4-d or 5-d tensors, but got {X.shape}")
    if win is not None:
        win_size = win.shape[-1]
    if not (win_size % 2 == 1):
        raise ValueError("Window size should be odd.")
    return X, Y, win_size


def _check_window(win, win_size, win_sigma):
    if win is None:
        return
    coords = torch.arange(win_size, dtype=torch.float64) - win_size // 2
    g = torch.exp(-(coords**2) / (2 * win_sigma**2))
    g = g / g.sum()
    w = win.detach().to("cpu", torch.float64).reshape(-1, win_size)
    if not torch.allclose(w, g.expand_as(w), rtol=1e-5, atol=1e-7):
        raise ValueError(
            "fastiqa.compat.pytorch_msssim supports only the Gaussian window of win_size and "
            "win_sigma; pass those instead of a custom win"
        )


def ssim(
    X: Tensor,
    Y: Tensor,
    data_range: float = 255,
    size_average: bool = True,
    win_size: int = 11,
    win_sigma: float = 1.5,
    win: Optional[Tensor] = None,
    K: Union[Tuple[float, float], List[float]] = (0.01, 0.03),
    nonnegative_ssim: bool = False,
) -> Tensor:
    X, Y, win_size = _prepare(X, Y, win_size, win)
    _check_window(win, win_size, win_sigma)
    v = F.ssim(
        X, Y, data_range, "per_channel", win_size=win_size, win_sigma=win_sigma, k1=K[0], k2=K[1], padding="valid"
    )
    if nonnegative_ssim:
        v = torch.relu(v)
    return v.mean() if size_average else v.mean(1)


def ms_ssim(
    X: Tensor,
    Y: Tensor,
    data_range: float = 255,
    size_average: bool = True,
    win_size: int = 11,
    win_sigma: float = 1.5,
    win: Optional[Tensor] = None,
    weights: Optional[Sequence[float]] = None,
    K: Union[Tuple[float, float], List[float]] = (0.01, 0.03),
) -> Tensor:
    X, Y, win_size = _prepare(X, Y, win_size, win)
    _check_window(win, win_size, win_sigma)
    return F.ms_ssim(
        X,
        Y,
        data_range,
        "mean" if size_average else "none",
        win_size=win_size,
        win_sigma=win_sigma,
        k1=K[0],
        k2=K[1],
        weights=weights,
        padding="valid",
    )


class SSIM(torch.nn.Module):
    def __init__(
        self,
        data_range: float = 255,
        size_average: bool = True,
        win_size: int = 11,
        win_sigma: float = 1.5,
        channel: int = 3,
        spatial_dims: int = 2,
        K: Union[Tuple[float, float], List[float]] = (0.01, 0.03),
        nonnegative_ssim: bool = False,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 (images) or 3 (volumes), got {spatial_dims}")
        self.win_size, self.win_sigma, self.channel = win_size, win_sigma, channel
        self.size_average, self.data_range, self.K, self.nonnegative_ssim = (
            size_average,
            data_range,
            K,
            nonnegative_ssim,
        )

    def forward(self, X: Tensor, Y: Tensor) -> Tensor:
        return ssim(
            X,
            Y,
            data_range=self.data_range,
            size_average=self.size_average,
            win_size=self.win_size,
            win_sigma=self.win_sigma,
            K=self.K,
            nonnegative_ssim=self.nonnegative_ssim,
        )


class MS_SSIM(torch.nn.Module):
    def __init__(
        self,
        data_range: float = 255,
        size_average: bool = True,
        win_size: int = 11,
        win_sigma: float = 1.5,
        channel: int = 3,
        spatial_dims: int = 2,
        weights: Optional[List[float]] = None,
        K: Union[Tuple[float, float], List[float]] = (0.01, 0.03),
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 (images) or 3 (volumes), got {spatial_dims}")
        self.win_size, self.win_sigma, self.channel = win_size, win_sigma, channel
        self.size_average, self.data_range, self.weights, self.K = size_average, data_range, weights, K

    def forward(self, X: Tensor, Y: Tensor) -> Tensor:
        return ms_ssim(
            X,
            Y,
            data_range=self.data_range,
            size_average=self.size_average,
            win_size=self.win_size,
            win_sigma=self.win_sigma,
            weights=self.weights,
            K=self.K,
        )
