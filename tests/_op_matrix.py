"""The public ops as one table for the autograd regression and fuzz tests:
each entry runs a fastiqa function and the same formula from the reference
(fastiqa.backends.reference), which in float64 is the oracle."""
from dataclasses import dataclass
from typing import Callable, Tuple

import torch

import fastiqa.backends.reference as R
import fastiqa.functional as F


@dataclass(frozen=True)
class Op:
    name: str
    run: Callable      # (pred, target, reduction, backend, opts) -> tensor
    ref: Callable      # (pred, target, reduction, opts) -> tensor (differentiable torch)
    reductions: Tuple[str, ...]
    windowed: bool     # takes win_size / win_sigma / padding
    min_side: int = 1
    grad_target: bool = True   # target can require grad


def _ssim_kw(o):
    return dict(win_size=o.get("win_size", 3), win_sigma=o.get("win_sigma", 1.5), padding=o.get("padding", "valid"))


def _ref_ssim(x, y, reduction, o):
    return R.ssim(x, y, o.get("data_range", 1.0), k1=o.get("k1", 0.01), reduction=reduction, **_ssim_kw(o))


def _ref_pixel(kind):
    def ref(x, y, reduction, o):
        loss = R.pixel_elementwise(x, y, kind, o.get("eps", 1e-3))
        return R.reduce_weighted(loss, None, reduction)
    return ref


def _pixel(fn):
    return lambda x, y, r, b, o: fn(x, y, None, r, backend=b)


MS_WEIGHTS = (0.3, 0.3, 0.4)  # three scales: 9x9 images suffice for win_size 3

OPS = {
    "l1_loss": Op("l1_loss", _pixel(F.l1_loss), _ref_pixel("l1"), ("mean", "sum", "none"), False),
    "mse_loss": Op("mse_loss", _pixel(F.mse_loss), _ref_pixel("mse"), ("mean", "sum", "none"), False),
    "charbonnier_loss": Op("charbonnier_loss", _pixel(F.charbonnier_loss), _ref_pixel("charbonnier"),
                           ("mean", "sum", "none"), False),
    "ssim": Op("ssim", lambda x, y, r, b, o: F.ssim(x, y, o.get("data_range", 1.0), r, k1=o.get("k1", 0.01),
                                                    backend=b, **_ssim_kw(o)),
               _ref_ssim, ("mean", "none", "per_channel", "map"), True, 3),
    "ssim_loss": Op("ssim_loss", lambda x, y, r, b, o: F.ssim_loss(x, y, o.get("data_range", 1.0), r,
                                                                   k1=o.get("k1", 0.01), backend=b, **_ssim_kw(o)),
                    lambda x, y, r, o: 1 - _ref_ssim(x, y, r, o), ("mean", "none"), True, 3),
    "l1_ssim_loss": Op("l1_ssim_loss",
                       lambda x, y, r, b, o: F.l1_ssim_loss(x, y, o.get("data_range", 1.0), r, alpha=0.3,
                                                            k1=o.get("k1", 0.01), backend=b, **_ssim_kw(o)),
                       lambda x, y, r, o: R.l1_ssim_loss(x, y, 0.3, o.get("data_range", 1.0), k1=o.get("k1", 0.01),
                                                         reduction=r, **_ssim_kw(o)),
                       ("mean", "none"), True, 3),
    "ms_ssim": Op("ms_ssim", lambda x, y, r, b, o: F.ms_ssim(x, y, o.get("data_range", 1.0), r, weights=MS_WEIGHTS,
                                                             backend=b, **_ssim_kw(o)),
                  lambda x, y, r, o: R.ms_ssim(x, y, o.get("data_range", 1.0), weights=MS_WEIGHTS, reduction=r,
                                               **_ssim_kw(o)),
                  ("mean", "none", "per_channel"), True, 9),
    "psnr": Op("psnr", lambda x, y, r, b, o: F.psnr(x, y, o.get("data_range", 1.0), r, eps=1e-8, backend=b),
               lambda x, y, r, o: R.psnr(x, y, o.get("data_range", 1.0), r, eps=1e-8), ("mean", "none"), False),
    "mae": Op("mae", lambda x, y, r, b, o: F.mae(x, y, o.get("data_range", 1.0), r, backend=b),
              lambda x, y, r, o: _mean_if(R.mae_per_image(x, y), r), ("mean", "none"), False),
    "style_loss": Op("style_loss", lambda x, y, r, b, o: F.style_loss(x, y, "l2", backend=b),
                     lambda x, y, r, o: R.style_loss(x, y, "l2"), ("mean",), False),
    "gram_matrix": Op("gram_matrix", lambda x, y, r, b, o: F.gram_matrix(x, backend=b, out_dtype=_acc(x)),
                      lambda x, y, r, o: R.gram_matrix(x), ("mean",), False, grad_target=False),
}


def _acc(x):
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _mean_if(v, reduction):
    return v.mean() if reduction == "mean" else v
