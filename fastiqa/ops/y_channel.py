"""The evaluation's Y-channel kernels on decoded RGB images: BT.601 Y (the published SR
convention, fastiqa.conventions.rgb_to_y), crop border and the statistics computed
straight from the decoder's samples, without a float copy of the images.

y_plane(img, divisor, data_range, crop)          (N, 1, H - 2 crop, W - 2 crop) float64 Y
y_mse(x, y, div_x, div_y, data_range, crop)      (N,) mean of (Y(x) - Y(y))^2
ssim_y(x, y, div_x, div_y, data_range, crop, win_size=11, win_sigma=1.5, k1=0.01, k2=0.03)
                                                 (ssim, mse): (N,) mean SSIM (valid window) of
                                                 the Y planes, and y_mse from the same pass

img, x, y: (N, 3, H, W) RGB samples, uint8, uint16, float32 or float64, any strides (a
decoder's (H, W, 3) array permuted is read in place). Y = 16 r / 255 + sum_c (w_c / 255)
(t_c / divisor) in data_range r units; the samples are divided before they are weighted,
so an 8-bit file (divisor 255) and its 16-bit copy (65535, samples 257 v) give bitwise the
same Y. x and y share a shape and a dtype; their divisors may differ (an 8-bit file paired
with a 16-bit one).

Backends: the compiled CPU kernels (fastiqa_C::y_plane / y_mse / ssim_y, one pass, no Y
plane written by y_mse and ssim_y) for CPU tensors that need no gradient; else the
reference formulas (plain PyTorch on the Y planes, differentiable), e.g. on a GPU.
backend= (or FASTIQA_BACKEND) other than cpu selects the reference. No gradient flows
through the compiled kernels: they serve evaluation.
"""
import os
from typing import Tuple

import torch
from torch import Tensor

from .. import _ext
from ..backends import reference

DTYPES = (torch.uint8, torch.uint16, torch.float32, torch.float64)


def _check(img: Tensor, name: str, crop: int):
    if img.dim() != 4 or img.shape[1] != 3:
        raise ValueError(f"{name} must be (N, 3, H, W) RGB samples, got shape {tuple(img.shape)}")
    if img.dtype not in DTYPES:
        raise TypeError(f"{name} must be one of {[str(d) for d in DTYPES]}, got {img.dtype}")
    h, w = img.shape[-2:]
    if crop < 0 or (img.numel() and 2 * crop >= min(h, w)):
        raise ValueError(f"crop must be >= 0 and leave pixels of the {w}x{h} (W x H) image, got {crop}")


def _check_pair(x: Tensor, y: Tensor, div_x, div_y, data_range, crop):
    _check(x, "x", crop)
    _check(y, "y", crop)
    if x.shape != y.shape or x.dtype != y.dtype or x.device != y.device:
        raise ValueError(f"x and y must share shape, dtype and device, got {tuple(x.shape)} {x.dtype} {x.device} "
                         f"and {tuple(y.shape)} {y.dtype} {y.device}")
    _check_scales(div_x, div_y, data_range)


def _check_scales(*values):
    if not all(v > 0 for v in values):
        raise ValueError(f"divisors and data_range must be > 0, got {values}")


def runs_compiled(op: str, backend, *tensors) -> bool:
    """True when the compiled CPU kernel `op` runs these tensors (see the module doc)."""
    requested = backend if backend is not None else os.environ.get("FASTIQA_BACKEND") or None
    return (all(t.device.type == "cpu" for t in tensors) and requested in (None, "cpu")
            and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
            and _ext.has_kernel(op, "CPU"))


def _planes_mse(yx: Tensor, yy: Tensor) -> Tensor:
    d = yx - yy
    return (d * d).mean(dim=(1, 2, 3))


def y_plane(img: Tensor, divisor: float, data_range: float, crop: int, backend=None) -> Tensor:
    _check(img, "img", crop)
    _check_scales(divisor, data_range)
    if runs_compiled("y_plane", backend, img):
        return torch.ops.fastiqa_C.y_plane(img, float(divisor), float(data_range), int(crop))
    return reference.y_plane(img, float(divisor), float(data_range), int(crop))


def y_mse(x: Tensor, y: Tensor, div_x: float, div_y: float, data_range: float, crop: int, backend=None) -> Tensor:
    _check_pair(x, y, div_x, div_y, data_range, crop)
    if runs_compiled("y_mse", backend, x, y):
        return torch.ops.fastiqa_C.y_mse(x, y, float(div_x), float(div_y), float(data_range), int(crop))
    return _planes_mse(reference.y_plane(x, div_x, data_range, crop), reference.y_plane(y, div_y, data_range, crop))


def ssim_y(x: Tensor, y: Tensor, div_x: float, div_y: float, data_range: float, crop: int, win_size: int = 11,
           win_sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03, backend=None) -> Tuple[Tensor, Tensor]:
    _check_pair(x, y, div_x, div_y, data_range, crop)
    h, w = x.shape[-2] - 2 * crop, x.shape[-1] - 2 * crop
    if x.numel() and min(h, w) < win_size:
        raise ValueError(f"ssim_y needs images of at least {win_size}x{win_size} pixels after cropping {crop} "
                         f"from each side, got {w}x{h} (W x H)")
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    if runs_compiled("ssim_y", backend, x, y):
        return torch.ops.fastiqa_C.ssim_y(x, y, float(div_x), float(div_y), float(data_range), int(crop),
                                          int(win_size), float(win_sigma), float(c1), float(c2))
    yx, yy = reference.y_plane(x, div_x, data_range, crop), reference.y_plane(y, div_y, data_range, crop)
    ssim = reference.ssim(yx, yy, data_range, win_size, win_sigma, k1, k2, padding="valid", reduction="none")
    return ssim, _planes_mse(yx, yy)
