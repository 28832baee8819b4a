"""The distance heads of LPIPS and DISTS in plain PyTorch: one function per metric, one signature.

    head(pred_feats, target_feats, weights) -> (N,) distance per image

pred_feats / target_feats: the backbone's feature maps, one (N, C_k, H_k, W_k) tensor per
layer k, the same shapes for both images; weights: one tensor per layer (LPIPS: the
non-negative channel weights w_k, shape (C_k,); DISTS: alpha_k and beta_k stacked, shape
(2, C_k), already divided by the sum of all alphas and betas). These are the formulas the
papers publish, written as a user would; they are the oracle a fused kernel must match.
"""
from typing import Sequence

from torch import Tensor

LPIPS_EPS = 1e-10  # lpips.normalize_tensor: f / (||f||_2 over channels + eps)
DISTS_C1 = 1e-6  # DISTS_pytorch: structure (mean) term constant
DISTS_C2 = 1e-6  # texture (variance / covariance) term constant


def _unit(f: Tensor) -> Tensor:
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + LPIPS_EPS)


def lpips_head(pred_feats: Sequence[Tensor], target_feats: Sequence[Tensor], weights: Sequence[Tensor]) -> Tensor:
    """LPIPS v0.1 (Zhang et al. 2018): sum over layers of the spatial mean of
    sum_c w_kc (u_k(pred) - u_k(target))_c^2, u_k the channel-unit-normalised features."""
    total = None
    for f0, f1, w in zip(pred_feats, target_feats, weights):
        d = (_unit(f0) - _unit(f1)).pow(2)
        layer = (d * w.view(1, -1, 1, 1)).sum(dim=1).mean(dim=(1, 2))
        total = layer if total is None else total + layer
    return total


def dists_head(pred_feats: Sequence[Tensor], target_feats: Sequence[Tensor], weights: Sequence[Tensor]) -> Tensor:
    """DISTS (Ding et al. 2020): 1 - sum over layers and channels of alpha * S1 + beta * S2,
    S1 = (2 mx my + c1) / (mx^2 + my^2 + c1) (structure of the means), S2 = (2 cov + c2) /
    (vx + vy + c2) (texture: variances and covariance), all over each channel's H x W."""
    total = None
    for f0, f1, ab in zip(pred_feats, target_feats, weights):
        mx, my = f0.mean(dim=(2, 3)), f1.mean(dim=(2, 3))
        vx = (f0 - mx[..., None, None]).pow(2).mean(dim=(2, 3))
        vy = (f1 - my[..., None, None]).pow(2).mean(dim=(2, 3))
        cov = (f0 * f1).mean(dim=(2, 3)) - mx * my
        s1 = (2 * mx * my + DISTS_C1) / (mx * mx + my * my + DISTS_C1)
        s2 = (2 * cov + DISTS_C2) / (vx + vy + DISTS_C2)
        layer = (ab[0] * s1 + ab[1] * s2).sum(dim=1)
        total = layer if total is None else total + layer
    return 1 - total


HEADS = {"lpips": lpips_head, "dists": dists_head}

