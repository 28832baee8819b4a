"""Perceptual family (the distance heads of LPIPS and DISTS, one backbone layer per call):
the op contract in plain PyTorch, the oracle of the Triton kernels.

lpips_head_fwd(pred, target, weight) -> value
    pred, target (N, C, H, W) features, weight (C,) non-negative channel weights; value (N,)
    in the accumulator dtype: the spatial mean of sum_c w_c (u_c(pred) - u_c(target))^2 with
    u = f / (||f||_2 over channels + 1e-10) (LPIPS v0.1, lpips.normalize_tensor).
lpips_head_bwd(pred, target, weight, grad_out, need_grad_pred, need_grad_target) -> (grad_pred, grad_target)
    grad_out (N,); the gradients of sum_n grad_out[n] value[n], in the features' dtype. Where a
    pixel's features are all zero (||f|| = 0) the normalisation's own term is taken as its
    limit, 0 (torch autograd of the formula gives NaN there: d sqrt(0)).
dists_head_fwd(pred, target, weight) -> value
    weight (2, C): alpha and beta (already divided by the sum of all of them); value (N,):
    sum_c alpha_c S1_c + beta_c S2_c over this layer, S1 = (2 mx my + c1) / (mx^2 + my^2 + c1),
    S2 = (2 cov + c2) / (vx + vy + c2) with each plane's mean, variance and covariance
    (DISTS_pytorch: c1 = c2 = 1e-6, cov = E[xy] - mx my). DISTS = 1 - the sum over layers.
dists_head_bwd(pred, target, weight, grad_out, need_grad_pred, need_grad_target) -> (grad_pred, grad_target)

The weights are constants of the op (no gradient): the learned heads are not trained here.

lpips_head / dists_head: the whole head over all layers written as a user would (the papers'
formulas, torch autograd for the gradient), the oracle of the tests.
"""
import torch
from torch import Tensor

from ...conventions import acc_dtype

__all__ = ["lpips_head", "dists_head", "lpips_head_fwd", "lpips_head_bwd", "dists_head_fwd", "dists_head_bwd",
           "LPIPS_EPS", "DISTS_C1", "DISTS_C2"]

LPIPS_EPS = 1e-10
DISTS_C1 = 1e-6
DISTS_C2 = 1e-6


def _unit(f: Tensor) -> Tensor:
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + LPIPS_EPS)


def lpips_head(pred_feats, target_feats, weights) -> Tensor:
    """LPIPS v0.1 (Zhang et al. 2018): sum over layers of the spatial mean of
    sum_c w_kc (u_k(pred) - u_k(target))_c^2, u_k the channel-unit-normalised features."""
    total = None
    for f0, f1, w in zip(pred_feats, target_feats, weights):
        layer = ((_unit(f0) - _unit(f1)).pow(2) * w.view(1, -1, 1, 1)).sum(dim=1).mean(dim=(1, 2))
        total = layer if total is None else total + layer
    return total


def dists_head(pred_feats, target_feats, weights) -> Tensor:
    """DISTS (Ding et al. 2020): 1 - sum over layers and channels of alpha S1 + beta S2
    (weights: (2, C_k) per layer, alpha and beta divided by the sum of all of them)."""
    return 1 - _dists_similarity(pred_feats, target_feats, weights)


def _dists_similarity(pred_feats, target_feats, weights) -> Tensor:
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
    return total


def _acc(pred, target, weight):
    a = acc_dtype(pred.dtype)
    return pred.to(a), target.to(a), weight.to(a)


def lpips_head_fwd(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    x, y, w = _acc(pred, target, weight)
    return lpips_head([x], [y], [w])


def _unit_grad(f: Tensor, g: Tensor) -> Tensor:
    """d/df of sum_c g_c u_c(f), u = f / (r + eps), r = ||f||: g / s - f (g . f) / (s^2 r),
    the second term 0 where r = 0 (its limit)."""
    r = f.pow(2).sum(1, keepdim=True).sqrt()
    s = r + LPIPS_EPS
    dot = (g * f).sum(1, keepdim=True)
    second = torch.where(r > 0, dot / (s * s * torch.where(r > 0, r, torch.ones_like(r))), torch.zeros_like(r))
    return g / s - f * second


def lpips_head_bwd(pred: Tensor, target: Tensor, weight: Tensor, grad_out: Tensor, need_grad_pred: bool,
                   need_grad_target: bool):
    x, y, w = _acc(pred, target, weight)
    hw = x.shape[2] * x.shape[3]
    u, v = _unit(x), _unit(y)
    g = (2.0 / hw) * w.view(1, -1, 1, 1) * (u - v) * grad_out.to(x.dtype).view(-1, 1, 1, 1)  # d value / d u
    gp = _unit_grad(x, g).to(pred.dtype) if need_grad_pred else pred.new_empty((0,))
    gt = _unit_grad(y, -g).to(target.dtype) if need_grad_target else target.new_empty((0,))
    return gp, gt


def _dists_stats(x: Tensor, y: Tensor):
    mx, my = x.mean((2, 3), keepdim=True), y.mean((2, 3), keepdim=True)
    vx = (x - mx).pow(2).mean((2, 3), keepdim=True)
    vy = (y - my).pow(2).mean((2, 3), keepdim=True)
    cov = (x * y).mean((2, 3), keepdim=True) - mx * my
    return mx, my, vx, vy, cov


def dists_head_fwd(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    x, y, w = _acc(pred, target, weight)
    return _dists_similarity([x], [y], [w])


def dists_head_bwd(pred: Tensor, target: Tensor, weight: Tensor, grad_out: Tensor, need_grad_pred: bool,
                   need_grad_target: bool):
    x, y, w = _acc(pred, target, weight)
    hw = x.shape[2] * x.shape[3]
    mx, my, vx, vy, cov = _dists_stats(x, y)
    go = grad_out.to(x.dtype).view(-1, 1, 1, 1) / hw
    a, b = w[0].view(1, -1, 1, 1) * go, w[1].view(1, -1, 1, 1) * go
    den1 = mx * mx + my * my + DISTS_C1
    num1 = 2 * mx * my + DISTS_C1
    den2 = vx + vy + DISTS_C2
    ds2_dv = -(2 * cov + DISTS_C2) / (den2 * den2)  # d S2 / d vx = d S2 / d vy
    ds2_dcov = 2 / den2

    def grad(f, m, other, m_other):
        ds1_dm = (2 * m_other * den1 - num1 * 2 * m) / (den1 * den1)
        return a * ds1_dm + b * (ds2_dv * 2 * (f - m) + ds2_dcov * (other - m_other))

    gp = grad(x, mx, y, my).to(pred.dtype) if need_grad_pred else pred.new_empty((0,))
    gt = grad(y, my, x, mx).to(target.dtype) if need_grad_target else target.new_empty((0,))
    return gp, gt
