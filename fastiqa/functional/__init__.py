"""User-facing functions: validate, normalise the arguments, call the op.

One convention for every loss and metric (README, "API conventions"):
    f(pred, target, <weight | data_range>, reduction="mean", *, options..., backend=None)
  * pred is the restored / predicted image, target the reference (ground truth);
    style_loss takes the features of both, gram_matrix one feature map (feat);
  * the third positional argument is the family's one argument that changes the
    value's units: the weight map of a pixel loss, data_range of the image metrics;
  * reduction defaults to "mean" everywhere (a scalar, what a training step
    backpropagates and what a published table averages); "none" gives one value
    per image (per element for the pixel losses);
  * every other option is keyword-only, so a call reads the same in every family;
  * backend= forces "cpu", "cuda", "triton" or "reference" (default: the fastest
    available, see fastiqa.info()).
Reduced values come back in float32 (float64 for float64 inputs); maps and
gradients in the input's dtype. One module per family; the compat layers keep
the other libraries' names and orders.
"""
from ._gram import GRAM_CRITERIA, gram_matrix, style_loss
from ._perceptual import LPIPS_MIN_SIDE, LPIPS_NETS, dists, lpips
from ._pixel import PIXEL_REDUCTIONS, charbonnier_loss, l1_loss, mse_loss
from ._psnr import PSNR_REDUCTIONS, mae, mse, psnr
from ._ssim import (
    SSIM_PADDINGS,
    SSIM_REDUCTIONS,
    SSIM_WINDOWS,
    SSIMComponents,
    l1_ssim_loss,
    ms_ssim,
    ms_ssim_min_size,
    ssim,
    ssim_loss,
)

__all__ = ["l1_loss", "mse_loss", "charbonnier_loss", "ssim", "ssim_loss", "ms_ssim", "ms_ssim_min_size",
           "l1_ssim_loss", "SSIMComponents", "psnr", "mse", "mae", "gram_matrix", "style_loss", "lpips", "dists",
           # the accepted option strings, for wrappers that validate at construction
           "PIXEL_REDUCTIONS", "SSIM_PADDINGS", "SSIM_REDUCTIONS", "SSIM_WINDOWS", "PSNR_REDUCTIONS", "GRAM_CRITERIA",
           "LPIPS_NETS", "LPIPS_MIN_SIDE"]
