"""PSNR family: per-image MSE / MAE / PSNR with the Y channel, border crop and 8-bit
quantisation of the published SR convention fused in (one pass over the images)."""
import math
from typing import Optional

import torch
from torch import Tensor

from .. import _checks
from .._codes import LossKind
from ..ops import _registry
from ..ops._layout import same_dense_layout

PSNR_REDUCTIONS = ("mean", "none", "pooled")
STAT_REDUCTIONS = ("mean", "none")  # mse / mae: "pooled" would equal "mean" (one image size per batch)


def psnr_of_mse(m: Tensor, data_range: float) -> Tensor:
    """10 log10(R^2 / m) computed as 20 log10(R) - 10 log10(m) (rsub: other - alpha * input): two
    tensor ops and two autograd nodes where the quotient form takes four ops and five nodes
    (~7 us of a small call); m = 0 gives inf. fastiqa.metrics and the evaluation pipeline call
    this too (equal bitwise)."""
    return torch.rsub(torch.log10(m), 20.0 * math.log10(data_range), alpha=10.0)


def _per_image_stat(x: Tensor, y: Tensor, kind: LossKind, data_range: float, y_channel: bool, crop: int,
                    quantize: bool, backend=None) -> Tensor:
    """Validated (N, C, H, W) arguments in, (N,) per-image MSE or MAE out: fastiqa_C::psnr_fwd."""
    x, y = same_dense_layout(x, y)
    need_grad = torch.is_grad_enabled() and (x.requires_grad or y.requires_grad) and not quantize
    if need_grad and x.dtype == torch.float16:
        # the stored d(stat_n)/dx = l'/count underflows float16 for large images: differentiate
        # float32 copies (autograd rounds the gradient to float16 once, after grad_out)
        x, y = x.float(), y.float()
    op = _registry.op("psnr_fwd", x.device, backend, x)
    return _registry.call(op, x, y, int(kind), int(crop), bool(y_channel), bool(quantize), float(data_range),
                          need_grad)[0]


def _psnr_args(x, y, data_range, reduction, y_channel, crop_border, quantize, reductions=STAT_REDUCTIONS):
    x, y = _checks.pair(x, y, "pred", "target")
    if x.dim() != 4:
        raise ValueError(f"pred and target must be (N, C, H, W) images, got shape {tuple(x.shape)}; "
                         "add a batch dimension with x[None] for a single image")
    data_range = _checks.positive(data_range, "data_range")
    _checks.choice(reduction, "reduction", reductions)
    _checks.flag(y_channel, "y_channel")
    _checks.flag(quantize, "quantize")
    crop_border = _checks.integer(crop_border, "crop_border", "an integer >= 0")
    if crop_border < 0:
        raise ValueError(f"crop_border must be an integer >= 0, got {crop_border}")
    if x.shape[-2] == 0 or x.shape[-1] == 0:
        raise ValueError(f"pred and target must be non-empty images (H, W > 0), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if 2 * crop_border >= h or 2 * crop_border >= w:
        raise ValueError(f"crop_border={crop_border} removes the whole {h}x{w} image; "
                         f"it must be less than half of the smaller side ({(min(h, w) - 1) // 2} at most)")
    if y_channel and x.shape[1] != 3:
        raise ValueError(f"y_channel=True needs RGB images with 3 channels, got {x.shape[1]} channels")
    return x, y, data_range, crop_border


def mse(pred: Tensor, target: Tensor, data_range: float = 1.0, reduction: str = "mean", *, y_channel: bool = False,
        crop_border: int = 0, quantize: bool = False, backend: Optional[str] = None) -> Tensor:
    """Per-image mean squared error of (N, C, H, W) images, one fused pass: (N,) or its mean.

    y_channel: compare the BT.601 luma of RGB inputs (Y = 16 + 65.481 R + 128.553 G +
    24.966 B on [0, 1] RGB, in the input's units); crop_border: pixels dropped from
    every side; quantize: round both images to the data_range's 8-bit grid first
    (clamp to [0, data_range], as saving to PNG; zero gradient). Float32 result
    (float64 for float64 inputs); differentiable w.r.t. x and y.
    """
    x, y, data_range, crop_border = _psnr_args(pred, target, data_range, reduction, y_channel, crop_border, quantize)
    out = _per_image_stat(x, y, LossKind.MSE, data_range, y_channel, crop_border, quantize, backend)
    return out.mean() if reduction == "mean" else out


def mae(pred: Tensor, target: Tensor, data_range: float = 1.0, reduction: str = "mean", *, y_channel: bool = False,
        crop_border: int = 0, quantize: bool = False, backend: Optional[str] = None) -> Tensor:
    """Per-image mean absolute error; same options as fastiqa.functional.mse."""
    x, y, data_range, crop_border = _psnr_args(pred, target, data_range, reduction, y_channel, crop_border, quantize)
    out = _per_image_stat(x, y, LossKind.L1, data_range, y_channel, crop_border, quantize, backend)
    return out.mean() if reduction == "mean" else out


def psnr(pred: Tensor, target: Tensor, data_range: float = 1.0, reduction: str = "mean", *,
         eps: Optional[float] = None, y_channel: bool = False, crop_border: int = 0, quantize: bool = False,
         backend: Optional[str] = None) -> Tensor:
    """Per-image PSNR 10 log10(data_range^2 / mse) in dB of (N, C, H, W) images in [0, data_range].

    reduction "none" gives (N,), "mean" the mean of the per-image values (the
    published convention), "pooled" the PSNR of the batch as one set:
    10 log10(data_range^2 / (total squared error / total element count)), i.e. of the
    mean of the per-image MSEs (every image of a batch has the same element count);
    torchmetrics' PSNR with dim=None and ffmpeg's psnr "average" give this value.
    Identical images give inf unless eps > 0 is given: then 10 log10(data_range^2 /
    (mse + eps)), mse the per-image (or, pooled, the batch's) MSE. The published SR convention is
    psnr(sr, hr, y_channel=True, crop_border=scale, quantize=True) on RGB images.
    Differentiable (PSNR as a loss) unless quantize=True (zero gradient).
    """
    x, y, data_range, crop_border = _psnr_args(pred, target, data_range, reduction, y_channel, crop_border, quantize,
                                               PSNR_REDUCTIONS)
    if eps is not None:
        eps = _checks.positive(eps, "eps")
    m = _per_image_stat(x, y, LossKind.MSE, data_range, y_channel, crop_border, quantize, backend)
    if reduction == "pooled":
        m = m.mean()  # the pooled MSE: equal element counts per image (a mean of an empty batch is nan)
    if eps is not None:
        m = m + eps
    out = psnr_of_mse(m, data_range)
    return out.mean() if reduction == "mean" else out
