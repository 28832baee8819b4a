"""Pixel losses: L1, MSE, Charbonnier, each optionally weighted.

pred and target of one shape (any float dtype, any layout), an optional weight
map broadcastable to them ((N,1,H,W) or (N,C,H,W)), and a reduction: "mean"
(sum / numel), "sum", "none" (the weighted loss map) or "weighted_mean"
(sum(w * l) / sum(w), w broadcast to the input's shape).
"""
from typing import Optional

import torch
from torch import Tensor

from .. import _checks
from .._codes import LossKind, Reduction, WeightMode, code
from ..ops import _registry
from ..ops import pixel as _pixel
from ..ops._layout import same_dense_layout

PIXEL_REDUCTIONS = ("none", "sum", "mean", "weighted_mean")
assert set(PIXEL_REDUCTIONS) <= {m.name.lower() for m in Reduction}


def _pixel_loss(pred, target, weight, kind, c, reduction, backend):
    pred, target = _checks.pair(pred, target)
    _checks.choice(reduction, "reduction", PIXEL_REDUCTIONS)
    weight = _checks.weight_map(weight, pred)
    return pixel_loss(pred, target, weight, kind, c, reduction, 1.0, backend)


def _prepare_weight(weight: Tensor, pred: Tensor):
    """Lays the weight against pred's flat memory: (mode, weight, channels, inner)."""
    if weight.shape == pred.shape:
        (_, weight) = same_dense_layout(pred, weight)
        return WeightMode.FULL, weight, 1, 1
    if pred.dim() >= 3 and weight.dim() == pred.dim() and weight.shape[1] == 1 \
            and weight.shape[0] == pred.shape[0] and weight.shape[2:] == pred.shape[2:]:
        channels = pred.shape[1]
        inner = 1
        for s in pred.shape[2:]:
            inner *= s
        weight = weight.contiguous()
        if pred.is_contiguous():
            return WeightMode.PLANE, weight, channels, max(inner, 1)
        return WeightMode.PIXEL, weight, channels, max(inner, 1)  # pred is channels-last dense
    # any other broadcastable shape: materialise once in pred's layout
    full = torch.empty_like(pred, dtype=weight.dtype).copy_(weight.expand_as(pred))
    return WeightMode.FULL, full, 1, 1


def pixel_loss(pred: Tensor, target: Tensor, weight: Optional[Tensor], kind: str, c: float,
               reduction: str, norm_scale: float = 1.0, backend: Optional[str] = None) -> Tensor:
    """Validated arguments in, loss out: one call of fastiqa_C::pixel_fwd."""
    if weight is not None and weight.requires_grad:
        # the fused op treats the weight as a constant; a learned weight map takes the
        # plain PyTorch path so that it still receives its gradient
        return _pixel.learned_weight_loss(pred, target, weight, kind, c, reduction, norm_scale)
    if weight is None and reduction == "weighted_mean":
        reduction = "mean"  # all weights 1
    pred, target = same_dense_layout(pred, target)
    mode, channels, inner = WeightMode.NO_WEIGHT, 1, 1
    if weight is not None:
        mode, weight, channels, inner = _prepare_weight(weight, pred)
    need_grad = torch.is_grad_enabled() and (pred.requires_grad or target.requires_grad)
    # float16 mean: d(mean)/d(pred) = l'/numel underflows float16 for large tensors; the op
    # stores the sum's gradient and the division below hands grad_out / numel (float32) to it
    half_mean = need_grad and reduction == "mean" and pred.dtype == torch.float16
    op = _registry.op("pixel_fwd", pred.device, backend, pred)
    out = _registry.call(op, pred, target, weight, mode, channels, inner, code(LossKind, kind, "kind"), float(c),
                         code(Reduction, "sum" if half_mean else reduction, "reduction"), float(norm_scale),
                         need_grad)[0]
    return out / pred.numel() if half_mean else out


def l1_loss(pred: Tensor, target: Tensor, weight: Optional[Tensor] = None, reduction: str = "mean",
            *, backend: Optional[str] = None) -> Tensor:
    """Mean absolute error |pred - target| (fused; gradient sign(pred - target))."""
    return _pixel_loss(pred, target, weight, "l1", 0.0, reduction, backend)


def mse_loss(pred: Tensor, target: Tensor, weight: Optional[Tensor] = None, reduction: str = "mean",
             *, backend: Optional[str] = None) -> Tensor:
    """Mean squared error (pred - target)^2."""
    return _pixel_loss(pred, target, weight, "mse", 0.0, reduction, backend)


def charbonnier_loss(pred: Tensor, target: Tensor, weight: Optional[Tensor] = None, reduction: str = "mean",
                     *, eps: float = 1e-3, backend: Optional[str] = None) -> Tensor:
    """Charbonnier loss sqrt((pred - target)^2 + eps^2), a smooth L1 (eps > 0).

    BasicSR's variant sqrt(d^2 + eps) with eps=1e-12 is fastiqa.compat.basicsr.CharbonnierLoss.
    """
    eps = _checks.positive(eps, "eps")
    return _pixel_loss(pred, target, weight, "charbonnier", eps * eps, reduction, backend)
