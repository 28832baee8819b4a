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

import torch
from torch import Tensor

from . import _checks
from .backends import reference as _reference
from .ops import pixel as _pixel
from .ops import psnr as _psnr
from .ops import ssim as _ssim

PIXEL_REDUCTIONS = tuple(_pixel.REDUCTIONS)

__all__ = ["l1_loss", "mse_loss", "charbonnier_loss", "ssim", "ssim_loss", "ms_ssim", "l1_ssim_loss", "psnr", "mse",
           "mae"]


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
MIN_WIN, MAX_WIN = 3, 31


def _ssim_args(x, y, data_range, win_size, win_sigma, k1, k2, padding, reduction, reductions=SSIM_REDUCTIONS):
    """Validates the SSIM arguments; returns (x, y, c1, c2) with x, y in one dtype."""
    x, y = _checks.pair(x, y, "x", "y")
    if x.dim() != 4:
        raise ValueError(f"x and y must be (N, C, H, W) images, got shape {tuple(x.shape)}")
    if isinstance(win_size, bool) or not isinstance(win_size, int):
        raise TypeError(f"win_size must be an odd integer in [{MIN_WIN}, {MAX_WIN}], got {win_size!r}")
    if win_size % 2 == 0 or not MIN_WIN <= win_size <= MAX_WIN:
        raise ValueError(f"win_size must be an odd integer in [{MIN_WIN}, {MAX_WIN}], got {win_size}")
    _checks.positive(win_sigma, "win_sigma")
    data_range = _checks.positive(data_range, "data_range")
    for name, k in (("k1", k1), ("k2", k2)):
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not k >= 0:
            raise ValueError(f"{name} must be a number >= 0, got {k!r}")
    if k2 == 0:
        raise ValueError("k2 must be > 0 (C2 = (k2 * data_range)^2 keeps the contrast term finite)")
    _checks.choice(padding, "padding", SSIM_PADDINGS)
    _checks.choice(reduction, "reduction", reductions)
    if min(x.shape[-2:]) < win_size:
        raise ValueError(f"images of size {tuple(x.shape[-2:])} are smaller than the {win_size}x{win_size} "
                         f"window; use a smaller win_size or larger images")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x and y must hold at least one image and one channel, got shape {tuple(x.shape)}")
    return x, y, (k1 * data_range) ** 2, (k2 * data_range) ** 2


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0, win_size: int = 11, win_sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03, padding: str = "valid", reduction: str = "mean",
         *, backend: Optional[str] = None) -> Tensor:
    """Structural similarity of x and y, (N, C, H, W) images in [0, data_range].

    padding: "valid" (Wang's MATLAB, BasicSR, pytorch_msssim, published tables),
    "same_zero" (fused-ssim, 3DGS) or "same_reflect" (kornia, torchmetrics >= 1.4.2).
    reduction: "mean", "none" (one value per image), "per_channel" (N, C), "map" (the
    SSIM map, in the input dtype). Reduced values are float32 (float64 for float64 input).
    Gaussian window of odd size 3..31 and any sigma > 0; gradients for both inputs.
    """
    x, y, c1, c2 = _ssim_args(x, y, data_range, win_size, win_sigma, k1, k2, padding, reduction)
    return _ssim.ssim(x, y, win_size, win_sigma, c1, c2, padding, reduction, backend=backend)[0]


def ssim_loss(x: Tensor, y: Tensor, data_range: float = 1.0, win_size: int = 11, win_sigma: float = 1.5,
              k1: float = 0.01, k2: float = 0.03, padding: str = "valid", reduction: str = "mean",
              *, backend: Optional[str] = None) -> Tensor:
    """1 - SSIM(x, y), fused: the gradient is computed in the forward pass and backward hands
    it over (no pass, no buffer) when the loss is backpropagated as is. reduction: "mean" or
    "none" (one value per image); the other arguments as in ssim()."""
    x, y, c1, c2 = _ssim_args(x, y, data_range, win_size, win_sigma, k1, k2, padding, reduction, ("mean", "none"))
    return _ssim.ssim(x, y, win_size, win_sigma, c1, c2, padding, reduction, "ssim_loss", backend=backend)[0]


def ms_ssim_min_size(win_size: int = 11, levels: int = 5) -> int:
    """Smallest image side MS-SSIM accepts: the coarsest scale must hold one window."""
    return (win_size - 1) * 2 ** (levels - 1) + 1


def ms_ssim(x: Tensor, y: Tensor, data_range: float = 1.0, win_size: int = 11, win_sigma: float = 1.5,
            k1: float = 0.01, k2: float = 0.03, weights=None, padding: str = "valid",
            reduction: str = "mean", *, backend: Optional[str] = None) -> Tensor:
    """Multi-scale SSIM (Wang et al. 2003), pytorch_msssim-compatible values.

    weights: one per scale (default 5 scales: 0.0448 0.2856 0.3001 0.2363 0.1333). Each scale
    but the last contributes its per-channel contrast-structure term, the last its SSIM, each
    clamped at 0 and raised to its weight; between scales 2x2 average pooling (padding
    H % 2, W % 2). reduction: "mean", "none" (N,) or "per_channel" (N, C). A term clamped to 0
    gives the value 0 and a zero (never NaN) gradient.
    """
    x, y, c1, c2 = _ssim_args(x, y, data_range, win_size, win_sigma, k1, k2, padding, reduction,
                              ("mean", "none", "per_channel"))
    weights = _reference.MS_SSIM_WEIGHTS if weights is None else tuple(float(w) for w in weights)
    if len(weights) < 1:
        raise ValueError("weights must hold at least one scale weight")
    need = ms_ssim_min_size(win_size, len(weights))
    if min(x.shape[-2:]) < need:
        raise ValueError(f"MS-SSIM with {len(weights)} scales and win_size={win_size} needs images of at least "
                         f"{need}x{need} pixels (the coarsest scale must hold one window), got "
                         f"{tuple(x.shape[-2:])}")
    w = torch.tensor(weights, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32, device=x.device)
    terms = []
    for level in range(len(weights)):
        last = level == len(weights) - 1
        s, cs = _ssim.ssim(x, y, win_size, win_sigma, c1, c2, padding, "per_channel", backend=backend,
                           grad_in_forward=False)
        terms.append(torch.relu(s if last else cs))
        if not last:
            pad = (x.shape[2] % 2, x.shape[3] % 2)
            x = torch.nn.functional.avg_pool2d(x, kernel_size=2, padding=pad)
            y = torch.nn.functional.avg_pool2d(y, kernel_size=2, padding=pad)
    v = torch.stack(terms, 0)
    positive = v > 0
    # v ** w with a finite gradient where v == 0 (relu already gives it a zero gradient there)
    powered = torch.where(positive, torch.where(positive, v, torch.ones_like(v)) ** w.view(-1, 1, 1),
                          torch.zeros_like(v))
    per_channel = torch.prod(powered, dim=0)
    if reduction == "per_channel":
        return per_channel
    return per_channel.mean(1) if reduction == "none" else per_channel.mean()


def l1_ssim_loss(x: Tensor, y: Tensor, alpha: float = 0.2, data_range: float = 1.0, win_size: int = 11,
                 win_sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03, padding: str = "same_zero",
                 reduction: str = "mean", *, backend: Optional[str] = None) -> Tensor:
    """(1 - alpha) * mean|x - y| + alpha * (1 - SSIM(x, y)) in one fused pass: the 3D Gaussian
    splatting photometric loss (alpha = lambda_dssim = 0.2, zero "same" padding as 3DGS and
    fused-ssim). reduction: "mean" or "none" (one value per image)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    x, y, c1, c2 = _ssim_args(x, y, data_range, win_size, win_sigma, k1, k2, padding, reduction,
                              ("mean", "none"))
    return _ssim.ssim(x, y, win_size, win_sigma, c1, c2, padding, reduction, "l1_ssim", float(alpha),
                      backend=backend)[0]


# ----------------------------------------------------------------------------
# psnr family: per-image PSNR / MSE / MAE with fused Y channel, crop, quantise
# ----------------------------------------------------------------------------

PSNR_REDUCTIONS = ("none", "mean")


def _psnr_args(x, y, data_range, reduction, y_channel, crop_border, quantize):
    x, y = _checks.pair(x, y, "x", "y")
    if x.dim() != 4:
        raise ValueError(f"x and y must be (N, C, H, W) images, got shape {tuple(x.shape)}; "
                         "add a batch dimension with x[None] for a single image")
    data_range = _checks.positive(data_range, "data_range")
    _checks.choice(reduction, "reduction", PSNR_REDUCTIONS)
    for value, name in ((y_channel, "y_channel"), (quantize, "quantize")):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f"crop_border must be an integer >= 0, got {crop_border!r}")
    h, w = x.shape[-2:]
    if 2 * crop_border >= h or 2 * crop_border >= w:
        raise ValueError(f"crop_border={crop_border} removes the whole {h}x{w} image; "
                         f"it must be less than half of the smaller side ({(min(h, w) - 1) // 2} at most)")
    if y_channel and x.shape[1] != 3:
        raise ValueError(f"y_channel=True needs RGB images with 3 channels, got {x.shape[1]} channels")
    return x, y, data_range


def mse(x: Tensor, y: Tensor, data_range: float = 1.0, reduction: str = "none", *, y_channel: bool = False,
        crop_border: int = 0, quantize: bool = False, backend: Optional[str] = None) -> Tensor:
    """Per-image mean squared error of (N, C, H, W) images, one fused pass: (N,) or its mean.

    y_channel: compare the BT.601 luma of RGB inputs (Y = 16 + 65.481 R + 128.553 G +
    24.966 B on [0, 1] RGB, in the input's units); crop_border: pixels dropped from
    every side; quantize: round both images to the data_range's 8-bit grid first
    (clamp to [0, data_range], as saving to PNG; zero gradient). Float32 result
    (float64 for float64 inputs); differentiable w.r.t. x and y.
    """
    x, y, data_range = _psnr_args(x, y, data_range, reduction, y_channel, crop_border, quantize)
    out = _psnr.per_image_stat(x, y, "mse", data_range, y_channel, crop_border, quantize, backend)
    return out.mean() if reduction == "mean" else out


def mae(x: Tensor, y: Tensor, data_range: float = 1.0, reduction: str = "none", *, y_channel: bool = False,
        crop_border: int = 0, quantize: bool = False, backend: Optional[str] = None) -> Tensor:
    """Per-image mean absolute error; same options as fastiqa.functional.mse."""
    x, y, data_range = _psnr_args(x, y, data_range, reduction, y_channel, crop_border, quantize)
    out = _psnr.per_image_stat(x, y, "mae", data_range, y_channel, crop_border, quantize, backend)
    return out.mean() if reduction == "mean" else out


def psnr(x: Tensor, y: Tensor, data_range: float = 1.0, reduction: str = "none", eps: Optional[float] = None,
         *, y_channel: bool = False, crop_border: int = 0, quantize: bool = False,
         backend: Optional[str] = None) -> Tensor:
    """Per-image PSNR 10 log10(data_range^2 / mse) in dB of (N, C, H, W) images in [0, data_range].

    reduction "none" gives (N,), "mean" the mean of the per-image values (the
    published convention). Identical images give inf unless eps > 0 is given:
    then 10 log10(data_range^2 / (mse + eps)). The published SR convention is
    psnr(sr, hr, y_channel=True, crop_border=scale, quantize=True) on RGB images.
    Differentiable (PSNR as a loss) unless quantize=True (zero gradient).
    """
    x, y, data_range = _psnr_args(x, y, data_range, reduction, y_channel, crop_border, quantize)
    if eps is not None:
        eps = _checks.positive(eps, "eps")
    m = _psnr.per_image_stat(x, y, "mse", data_range, y_channel, crop_border, quantize, backend)
    if eps is not None:
        m = m + eps
    out = 10.0 * torch.log10((data_range * data_range) / m)
    return out.mean() if reduction == "mean" else out

# gram family: Gram matrix and style (texture) loss
# ----------------------------------------------------------------------------

from .ops import gram as _gram  # noqa: E402

GRAM_CRITERIA = tuple(_gram.CRITERIA)


def _features(feat, name):
    _checks.tensor(feat, name)
    if feat.dim() != 4:
        raise ValueError(f"{name} must be (N, C, H, W) features, got shape {tuple(feat.shape)}")
    return feat


def _gram_scale(feat, normalize):
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be True or False, got {type(normalize).__name__}")
    _, c, h, w = feat.shape
    return 1.0 / max(c * h * w, 1) if normalize else 1.0


def gram_matrix(feat: Tensor, normalize: bool = True, *, out_dtype=None,
                backend: Optional[str] = None) -> Tensor:
    """Gram matrix of (N, C, H, W) features: (N, C, C), F F^T / (C*H*W) (BasicSR, the
    default) or the raw F F^T with normalize=False (piq's convention).

    Accumulates in float32 (float64 for float64 features) and scales before the
    cast to out_dtype (default: feat's dtype), so float16 features never overflow
    a normalised Gram. Differentiable; channels_last features are read in place.
    """
    feat = _features(feat, "feat")
    scale = _gram_scale(feat, normalize)
    g = _gram.gram(feat, scale, backend)
    return g.to(out_dtype or feat.dtype)


def style_loss(feat_x: Tensor, feat_y: Optional[Tensor] = None, criterion: str = "l1", *,
               target_gram: Optional[Tensor] = None, normalize: bool = True,
               backend: Optional[str] = None) -> Tensor:
    """Distance between the Gram matrices of feat_x and feat_y ((N, C, H, W) each):
    "l1" mean |G_x - G_y|, "l2" mean (G_x - G_y)^2, "fro" ||G_x - G_y||_F (BasicSR's
    criteria; the mean is over all N*C*C entries).

    Fused: G_x - G_y comes from one GEMM over the features, the criterion is reduced
    in the same op and the gradients of both inputs come from one backward op.
    target_gram= (N, C, C), (1, C, C) or (C, C) replaces feat_y with a precomputed
    (e.g. gram_matrix(feat_y).float()) target Gram. Returns a 0-dim float32 tensor
    (float64 for float64 features).
    """
    feat_x = _features(feat_x, "feat_x")
    _checks.choice(criterion, "criterion", GRAM_CRITERIA)
    scale = _gram_scale(feat_x, normalize)
    if (feat_y is None) == (target_gram is None):
        raise ValueError("give exactly one of feat_y and target_gram")
    if feat_y is not None:
        feat_x, feat_y = _checks.pair(feat_x, feat_y, "feat_x", "feat_y")
        return _gram.style(feat_x, feat_y, None, scale, criterion, backend)
    _checks.tensor(target_gram, "target_gram")
    n, c = feat_x.shape[:2]
    if target_gram.shape not in ((n, c, c), (1, c, c), (c, c)):
        raise ValueError(
            f"target_gram must have shape ({n}, {c}, {c}), (1, {c}, {c}) or ({c}, {c}) for feat_x of "
            f"shape {tuple(feat_x.shape)}, got {tuple(target_gram.shape)}"
        )
    if target_gram.device != feat_x.device:
        raise ValueError(f"target_gram must be on feat_x's device {feat_x.device}, got {target_gram.device}")
    return _gram.style(feat_x, None, target_gram, scale, criterion, backend)


__all__ += ["gram_matrix", "style_loss"]
