"""PSNRLoss: -PSNR as a training loss (fastiqa.functional.psnr)."""
from typing import Optional

import torch

from .. import _checks
from .. import functional as F


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
        return (f"data_range={self.data_range}, eps={self.eps}, y_channel={self.y_channel}, "
                f"crop_border={self.crop_border}")
