"""SSIM family: SSIM, 1 - SSIM, MS-SSIM and the fused L1 + SSIM loss of 3DGS.

(N, C, H, W) images or (N, C, D, H, W) volumes (a separable 3-D window) in [0, data_range];
Gaussian (any sigma > 0) or uniform window of odd size 3..31, population or sample covariance;
gradients for both inputs. padding: "valid" (Wang's MATLAB, BasicSR,
pytorch_msssim, published tables), "same_zero" (fused-ssim, 3DGS) or
"same_reflect" (kornia, torchmetrics >= 1.4.2).
"""

import math
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from .. import _checks
from .._codes import Padding, Reduction, SsimOutput, code
from ..conventions import MS_SSIM_WEIGHTS, acc_dtype
from ..ops import _registry
from . import _downsample, _ssim_masked

SSIM_PADDINGS = _checks.SSIM_PADDINGS
SSIM_REDUCTIONS = ("mean", "none", "per_channel", "map")
SSIM_WINDOWS = ("gaussian", "uniform")
MIN_WIN, MAX_WIN = _checks.MIN_WIN, _checks.MAX_WIN


class SSIMComponents(NamedTuple):
    """ssim(..., return_components=True): the SSIM and its three factors, each reduced like the
    SSIM (maps for reduction="map"); ssim = luminance * contrast * structure up to rounding."""
    ssim: Tensor
    luminance: Tensor
    contrast: Tensor
    structure: Tensor


def _run(x, y, win_size, win_sigma, c1, c2, padding, reduction, output="ssim", alpha=0.0, backend=None,
         grad_in_forward=True):
    """Validated arguments in, (out, per-plane cs) out: one call of fastiqa_C::ssim_fwd.

    grad_in_forward=False (MS-SSIM) leaves the gradient to backward, which then recomputes
    it with the gradients autograd brings to out and cs."""
    grad = grad_in_forward and torch.is_grad_enabled()
    op = _registry.op("ssim_fwd", x.device, backend)
    out, cs, _, _, _ = _registry.call(op, x, y, [int(v) for v in win_size], [float(v) for v in win_sigma],
                                      float(c1), float(c2), code(Padding, padding, "padding"),
                                      code(Reduction, reduction, "reduction"), code(SsimOutput, output, "output"),
                                      float(alpha), grad and x.requires_grad, grad and y.requires_grad)
    return out, cs


def _ssim_args(x, y, data_range, win_size, win_sigma, k1, k2, padding, reduction, reductions=SSIM_REDUCTIONS,
               downsample=None, window="gaussian", use_sample_covariance=False):
    """Validates the SSIM arguments; returns (x, y, win_size, win_sigma, c1, c2) with x, y in one
    dtype, downsampled as ssim.m does when downsample asks for it (fastiqa/functional/_downsample.py).

    The window and covariance options need no kernel of their own, in any backend:
      window="uniform" is the Gaussian window of infinite sigma (every backend builds its
        window as exp(-k^2 / (2 sigma^2)) normalised: all weights 1 / win_size, exactly);
      use_sample_covariance=True scales sigma_x^2, sigma_y^2 and sigma_xy by r = N / (N - 1)
        (N = the window's pixel count, the product of its sizes), which only the contrast-structure term
        cs = (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2) sees; dividing its numerator
        and denominator by r makes it cs with C2 / r, so the kernels get c2 * (N - 1) / N.
        Values and gradients are those of the definition (up to rounding)."""
    x, y = _checks.pair(x, y, "pred", "target")
    if x.dim() not in (4, 5):
        raise ValueError(f"pred and target must be (N, C, H, W) images or (N, C, D, H, W) volumes, got shape "
                         f"{tuple(x.shape)}")
    if x.dim() == 5 and downsample is not None:
        raise ValueError(f"downsample (ssim.m's rule for images) takes (N, C, H, W) images, not volumes; got "
                         f"downsample={downsample!r} with shape {tuple(x.shape)}")
    data_range, win_size, win_sigma, k1, k2 = _checks.ssim_options(data_range, win_size, win_sigma, k1, k2, padding)
    win_size, win_sigma = _checks.spatial_window(win_size, win_sigma, x.dim() - 2)
    _checks.choice(reduction, "reduction", reductions)
    _checks.choice(window, "window", SSIM_WINDOWS)
    _checks.flag(use_sample_covariance, "use_sample_covariance")
    x, y, f = _downsample.apply(x, y, downsample)
    # per axis, not min(): torch 2.6 guards on H vs W
    if any(side < win for side, win in zip(x.shape[2:], win_size)):
        after = f" after downsampling by {f} (downsample={downsample!r})" if f > 1 else ""
        raise ValueError(
            f"images of size {tuple(x.shape[2:])}{after} are smaller than the {'x'.join(map(str, win_size))} "
            f"window; use a smaller win_size or larger images"
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"pred and target must hold at least one image and one channel, got shape {tuple(x.shape)}")
    c2 = (k2 * data_range) ** 2
    if use_sample_covariance:
        n = math.prod(win_size)
        c2 = c2 * (n - 1) / n
    sigma = tuple(math.inf for _ in win_size) if window == "uniform" else win_sigma
    return x, y, win_size, sigma, (k1 * data_range) ** 2, c2


def _masked(mask, nan_policy, downsample, fn="ssim") -> bool:
    """Validates mask / nan_policy (before _ssim_args: nan_policy first); True when the masked
    path runs (fastiqa/functional/_ssim_masked.py)."""
    _ssim_masked.check_nan_policy(nan_policy)
    masked = mask is not None or nan_policy == "omit"
    if masked and downsample is not None:
        raise ValueError(f"{fn}: mask / nan_policy='omit' do not combine with downsample (got downsample="
                         f"{downsample!r}); downsample the images and the mask first")
    return masked


def _run_masked(x, y, mask, nan_policy, win_size, win_sigma, c1, c2, padding, reduction, output="ssim", alpha=0.0,
                backend=None):
    if mask is not None:
        _ssim_masked.check_mask(mask, x)
    x, y, m = _ssim_masked.prepare(x, y, mask, nan_policy)
    return _ssim_masked.run(x, y, m, win_size, win_sigma, c1, c2, padding, reduction, output, alpha, backend)


def ssim(
    pred: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    win_size: int = 11,
    win_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    padding: str = "valid",
    downsample=None,
    window: str = "gaussian",
    use_sample_covariance: bool = False,
    return_components: bool = False,
    mask: Optional[Tensor] = None,
    nan_policy: str = "propagate",
    backend: Optional[str] = None,
):
    """Structural similarity of x and y, (N, C, H, W) images or (N, C, D, H, W) volumes in
    [0, data_range] (volumes: the separable 3-D window, win_size / win_sigma one number or
    (D, H, W); every padding; pytorch_msssim's and torchmetrics' 5-D SSIM; no downsample).

    padding: "valid" (Wang's MATLAB, BasicSR, pytorch_msssim, published tables),
    "same_zero" (fused-ssim, 3DGS) or "same_reflect" (kornia, torchmetrics >= 1.4.2).
    reduction: "mean", "none" (one value per image), "per_channel" (N, C), "map" (the
    SSIM map, in the input dtype). Reduced values are float32 (float64 for float64 input).
    Gaussian window of odd size 3..31 and any sigma > 0; gradients for both inputs.
    win_size, win_sigma: one number, or one per spatial axis, (H, W) or (D, H, W) (torchmetrics'
    kernel_size / sigma sequences), e.g. win_size=(7, 11), win_sigma=(1.0, 1.5).
    downsample: None (off), "auto" (Wang's ssim.m: f = max(1, round(min(H, W) / 256)))
    or an integer f: both images are first box-filtered f x f ('symmetric' padding,
    'same' size) and every f-th row and column from the first is kept, as ssim.m does
    (differentiable; the map is then of the downsampled size).
    window: "gaussian" (win_sigma) or "uniform" (every weight 1 / win_size per axis; win_sigma
    ignored); use_sample_covariance: the variances and covariance times N / (N - 1), N the
    window's pixel count (win_size^2, or the product of the per-axis sizes).
    window="uniform", win_size=7, use_sample_covariance=True, padding="valid" is scikit-image's
    structural_similarity with its defaults.
    return_components: an SSIMComponents (ssim, luminance, contrast, structure), each reduced as
    the SSIM (maps for reduction="map"; images and volumes), from the same fused pass: l = (2 mu_x mu_y + C1) /
    (mu_x^2 + mu_y^2 + C1), c = (2 sigma_x sigma_y + C2) / (sigma_x^2 + sigma_y^2 + C2),
    s = (sigma_xy + C3) / (sigma_x sigma_y + C3), C3 = C2 / 2 (c * s is the contrast-structure term
    of the SSIM), sigma_x = sqrt(max(sigma_x^2, 0)) with a zero gradient through sigma_x where
    sigma_x^2 <= 0; differentiable in both inputs (a loss on any of them backpropagates).
    use_sample_covariance applies to c and s as to the SSIM (N / (N - 1) on both variances and the
    covariance).
    mask: weights m >= 0, bool or floating, (N, 1, ...) or (N, C, ...) with the images' spatial size
    (not differentiable): SSIM of the normalised convolutions W = G*m, mu_x = G*(m x) / W,
    sigma_x^2 = G*(m x^2) / W - mu_x^2, sigma_xy = G*(m x y) / W - mu_x mu_y, reduced as
    sum(m_c S) / sum(m_c), m_c = m at the window centres, per plane, image or batch (NaN when
    those weights sum to 0); the map holds S where W > 0 and 0 where W = 0. The mask is padded
    as the images: reflected for "same_reflect"; for "same_zero" the padded zeros weigh 1, so an
    all-ones mask equals no mask for every padding. Gradients are exactly 0 where m = 0.
    nan_policy: "propagate" (NaN in, NaN out) or "omit" (pixels not finite in either input weigh
    0, with a zero gradient). With return_components: l, c, s of the normalised statistics, reduced with
    the same m_c weights (gradients: autograd of the reference formulas, not fused). Not with downsample
    (fastiqa/functional/_ssim_masked.py).
    """
    _checks.flag(return_components, "return_components")
    masked = _masked(mask, nan_policy, downsample)
    x, y, win_size, win_sigma, c1, c2 = _ssim_args(
        pred, target, data_range, win_size, win_sigma, k1, k2, padding, reduction, downsample=downsample,
        window=window, use_sample_covariance=use_sample_covariance,
    )
    if masked:
        if return_components:
            if x.dim() != 4:
                raise ValueError("return_components=True with a mask takes (N, C, H, W) images (volumes: not yet)")
            if mask is not None:
                _ssim_masked.check_mask(mask, x)
            xm, ym, m = _ssim_masked.prepare(x, y, mask, nan_policy)
            return SSIMComponents(*_ssim_masked.run_components(xm, ym, m, win_size, win_sigma, c1, c2, padding,
                                                                reduction, backend))
        return _run_masked(x, y, mask, nan_policy, win_size, win_sigma, c1, c2, padding, reduction, backend=backend)
    if return_components:
        out = _run(x, y, win_size, win_sigma, c1, c2, padding, reduction, "components", backend=backend,
                   grad_in_forward=False)[0]
        return SSIMComponents(*out.unbind(0))
    return _run(x, y, win_size, win_sigma, c1, c2, padding, reduction, backend=backend)[0]


def ssim_loss(
    pred: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    win_size: int = 11,
    win_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    padding: str = "valid",
    downsample=None,
    window: str = "gaussian",
    use_sample_covariance: bool = False,
    mask: Optional[Tensor] = None,
    nan_policy: str = "propagate",
    backend: Optional[str] = None,
) -> Tensor:
    """1 - SSIM(x, y), fused: the gradient is computed in the forward pass and backward hands
    it over (no pass, no buffer) when the loss is backpropagated as is. reduction: "mean" or
    "none" (one value per image); the other arguments (downsample, window,
    use_sample_covariance, mask and nan_policy too) as in ssim() (with a mask the gradient is
    computed by the backward pass)."""
    masked = _masked(mask, nan_policy, downsample, fn="ssim_loss")
    x, y, win_size, win_sigma, c1, c2 = _ssim_args(
        pred, target, data_range, win_size, win_sigma, k1, k2, padding, reduction, ("mean", "none"), downsample,
        window, use_sample_covariance,
    )
    if masked:
        return _run_masked(x, y, mask, nan_policy, win_size, win_sigma, c1, c2, padding, reduction, "ssim_loss",
                           backend=backend)
    return _run(x, y, win_size, win_sigma, c1, c2, padding, reduction, "ssim_loss", backend=backend)[0]


def _pool(t: Tensor) -> Tensor:
    """MS-SSIM's 2x2 average pooling with zero padding H % 2, W % 2 on each side
    (pytorch_msssim's avg_pool2d(padding=...), count_include_pad): the padding by F.pad,
    which takes symbolic sizes, so torch.compile(dynamic=True) keeps one graph for odd
    and even sides instead of specialising on their parity.

    In the accumulator dtype: float16/bfloat16 images are pooled in float32 and the
    coarser scales stay float32 (values, and the gradients summed over the scales).
    Volumes: 2x2x2 pooling, padding D % 2 too (pytorch_msssim's avg_pool3d)."""
    t = t.to(acc_dtype(t.dtype))
    pads = [p for s in reversed(t.shape[2:]) for p in (s % 2, s % 2)]
    pool = torch.nn.functional.avg_pool2d if t.dim() == 4 else torch.nn.functional.avg_pool3d
    return pool(torch.nn.functional.pad(t, pads), kernel_size=2)


def ms_ssim_min_size(win_size=11, levels: int = 5):
    """Smallest image side MS-SSIM accepts: the coarsest scale must hold one window (a tuple,
    one per axis, for a per-axis win_size)."""
    if isinstance(win_size, (tuple, list)):
        return tuple(ms_ssim_min_size(w, levels) for w in win_size)
    return (win_size - 1) * 2 ** (levels - 1) + 1


# MS-SSIM runs its scales from this one on (0-based: the fourth and fifth of the default five,
# 1/64 and 1/256 of the first scale's pixels) in float64, whatever the input dtype. The coarse
# scales are where the one-pass variance E[x^2] - E[x]^2 cancels most (2x2 pooling averages
# the detail away, so sigma^2 << mu^2 and float32 keeps ~eps mu^2 / sigma^2 of it: 1e-4
# relative at the 12x12 fifth scale of a noisy 180x190 image), and they cost next to nothing
# in float64 (MS-SSIM fwd+bwd time unchanged within 3% noise at 8x3x256x256, 1x3x512x512, 16x3x192x192).
# With it the value's error against a float64 run is at most the float32 reference's and
# mostly 10x smaller (tests/test_ms_ssim_precision.py); all in float32, the baseline ISA
# variant gave 1.9e-6 where the reference happened to give 1.4e-7. A scale index, not a
# size: the Python layer never branches on a (symbolic) size (README, "The op contract").
MS_SSIM_FLOAT64_FROM_SCALE = 3


def ms_ssim(
    pred: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    win_size: int = 11,
    win_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    weights=None,
    padding: str = "valid",
    downsample=None,
    window: str = "gaussian",
    use_sample_covariance: bool = False,
    mask: Optional[Tensor] = None,
    nan_policy: str = "propagate",
    backend: Optional[str] = None,
) -> Tensor:
    """Multi-scale SSIM (Wang et al. 2003), pytorch_msssim-compatible values.

    weights: one per scale (default 5 scales: 0.0448 0.2856 0.3001 0.2363 0.1333). Each scale
    but the last contributes its per-channel contrast-structure term, the last its SSIM, each
    clamped at 0 and raised to its weight; between scales 2x2 average pooling (padding
    H % 2, W % 2). reduction: "mean", "none" (N,) or "per_channel" (N, C). A term clamped to 0
    gives the value 0 and a zero (never NaN) gradient. The scales from the fourth on run in
    float64 (MS_SSIM_FLOAT64_FROM_SCALE; the value comes back in float32 for other inputs).
    downsample: ssim.m's pre-pass (as in ssim()) applied once to the input images, before
    the first scale (Wang's msssim.m has none;
    pyiqa's repeats avg_pool2d at every scale); the size rule then holds for the downsampled images.
    window, use_sample_covariance: as in ssim(), at every scale. mask / nan_policy="omit": not
    supported (no peer defines a masked MS-SSIM: how a mask pools between scales is open).
    """
    if _masked(mask, nan_policy, None, fn="ms_ssim"):
        raise ValueError("ms_ssim takes no mask and no nan_policy='omit' (masked MS-SSIM is not defined; use ssim "
                         "with mask=)")
    x, y, win_size, win_sigma, c1, c2 = _ssim_args(
        pred, target, data_range, win_size, win_sigma, k1, k2, padding, reduction, ("mean", "none", "per_channel"),
        downsample, window, use_sample_covariance,
    )
    weights = MS_SSIM_WEIGHTS if weights is None else _checks.scale_weights(weights)
    need = ms_ssim_min_size(win_size, len(weights))
    if any(side < n for side, n in zip(x.shape[2:], need)):
        size = win_size[0] if len(set(win_size)) == 1 else win_size
        raise ValueError(
            f"MS-SSIM with {len(weights)} scales and win_size={size} needs images of at least "
            f"{'x'.join(map(str, need))} pixels (the coarsest scale must hold one window), got "
            f"{tuple(x.shape[2:])}"
        )
    w = torch.tensor(weights, dtype=acc_dtype(x.dtype), device=x.device)
    terms = []
    for level in range(len(weights)):
        last = level == len(weights) - 1
        if level == MS_SSIM_FLOAT64_FROM_SCALE:
            x, y = x.double(), y.double()  # this scale and the coarser ones (no-op for float64)
        s, cs = _run(
            x, y, win_size, win_sigma, c1, c2, padding, "per_channel", backend=backend, grad_in_forward=False
        )
        terms.append(torch.relu(s if last else cs).to(w.dtype))
        if not last:
            x, y = _pool(x), _pool(y)
    v = torch.stack(terms, 0)
    # v ** w with a finite gradient where v == 0 (relu already gives it a zero gradient there);
    # a NaN term stays NaN (NaN in, NaN out: relu(NaN) is NaN, NaN > 0 is False)
    powered_lanes = (v > 0) | torch.isnan(v)
    powered = torch.where(
        powered_lanes, torch.where(powered_lanes, v, torch.ones_like(v)) ** w.view(-1, 1, 1), torch.zeros_like(v)
    )
    per_channel = torch.prod(powered, dim=0)
    if reduction == "per_channel":
        return per_channel
    return per_channel.mean(1) if reduction == "none" else per_channel.mean()


def l1_ssim_loss(
    pred: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    alpha: float = 0.2,
    win_size: int = 11,
    win_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    padding: str = "same_zero",
    window: str = "gaussian",
    use_sample_covariance: bool = False,
    mask: Optional[Tensor] = None,
    nan_policy: str = "propagate",
    backend: Optional[str] = None,
) -> Tensor:
    """(1 - alpha) * mean|x - y| + alpha * (1 - SSIM(x, y)) in one fused pass: the 3D Gaussian
    splatting photometric loss (alpha = lambda_dssim = 0.2, zero "same" padding as 3DGS and
    fused-ssim). reduction: "mean" or "none" (one value per image); window and
    use_sample_covariance as in ssim(). mask / nan_policy as in ssim(); the L1 term is then
    sum(m |x - y|) / sum(m) over the same pixel sets (image or batch)."""
    alpha = _checks.in_unit_interval(alpha, "alpha")
    masked = _masked(mask, nan_policy, None, fn="l1_ssim_loss")
    x, y, win_size, win_sigma, c1, c2 = _ssim_args(
        pred, target, data_range, win_size, win_sigma, k1, k2, padding, reduction, ("mean", "none"), None,
        window, use_sample_covariance,
    )
    if masked:
        return _run_masked(x, y, mask, nan_policy, win_size, win_sigma, c1, c2, padding, reduction, "l1_ssim",
                           float(alpha), backend=backend)
    return _run(x, y, win_size, win_sigma, c1, c2, padding, reduction, "l1_ssim", float(alpha), backend=backend)[
        0
    ]
