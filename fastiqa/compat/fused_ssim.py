"""fused-ssim-compatible API: `from fastiqa.compat.fused_ssim import fused_ssim` in place of
`from fused_ssim import fused_ssim`.

fused-ssim's semantics: 11x11 Gaussian window (sigma 1.5), C1 = 0.01^2, C2 = 0.03^2 (data
range 1), padding "same" (zeros outside the image, the 3DGS convention) or "valid", one
scalar: the mean of the SSIM map. Unlike fused-ssim this runs on every backend and dtype and
gives gradients for both images; train=False computes the value without autograd.
"""
import torch
from torch import Tensor

from .. import functional as F

_PADDING = {"same": "same_zero", "valid": "valid"}


def fused_ssim(img1: Tensor, img2: Tensor, padding: str = "same", train: bool = True) -> Tensor:
    if padding not in _PADDING:
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    if img1.dim() == 3:
        img1, img2 = img1.unsqueeze(0), img2.unsqueeze(0)
    if train:
        return F.ssim(img1, img2, padding=_PADDING[padding])
    with torch.no_grad():
        return F.ssim(img1, img2, padding=_PADDING[padding])
