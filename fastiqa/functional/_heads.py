"""The distance heads of LPIPS and DISTS: one function per metric, one signature.

    head(pred_feats, target_feats, weights, backend=None) -> (N,) distance per image

pred_feats / target_feats: the backbone's feature maps, one (N, C_k, H_k, W_k) tensor per
layer k, the same shapes for both images; weights: one tensor per layer (LPIPS: the
non-negative channel weights w_k, shape (C_k,); DISTS: alpha_k and beta_k stacked, shape
(2, C_k), already divided by the sum of all alphas and betas). Each layer is one call of the
perceptual family's op (fastiqa/ops/perceptual.py: one pass forward, one backward; the
compiled kernels of csrc/cpu/perceptual_impl.h and csrc/cuda/perceptual.cu); the
formulas themselves: fastiqa.backends.reference.lpips_head / dists_head.
"""
from typing import Optional, Sequence

from torch import Tensor

from ..conventions import acc_dtype
from ..ops import _registry


def _layers(op, pred_feats, target_feats, weights, backend):
    total = None
    for f0, f1, w in zip(pred_feats, target_feats, weights):
        # the weights in the accumulator dtype: rounded to 16 bits they moved the value by ~1e-4
        layer = _registry.call(_registry.op(op, f0.device, backend, f0, f1), f0, f1, w.to(acc_dtype(f0.dtype)))
        total = layer if total is None else total + layer
    return total


def lpips_head(pred_feats: Sequence[Tensor], target_feats: Sequence[Tensor], weights: Sequence[Tensor],
               backend: Optional[str] = None) -> Tensor:
    """LPIPS v0.1 (Zhang et al. 2018): sum over layers of the spatial mean of
    sum_c w_kc (u_k(pred) - u_k(target))_c^2, u_k the channel-unit-normalised features."""
    return _layers("lpips_head_fwd", pred_feats, target_feats, weights, backend)


def dists_head(pred_feats: Sequence[Tensor], target_feats: Sequence[Tensor], weights: Sequence[Tensor],
               backend: Optional[str] = None) -> Tensor:
    """DISTS (Ding et al. 2020): 1 - sum over layers and channels of alpha * S1 + beta * S2,
    S1 = (2 mx my + c1) / (mx^2 + my^2 + c1) (structure of the means), S2 = (2 cov + c2) /
    (vx + vy + c2) (texture: variances and covariance), all over each channel's H x W."""
    return 1 - _layers("dists_head_fwd", pred_feats, target_feats, weights, backend)


HEADS = {"lpips": lpips_head, "dists": dists_head}
