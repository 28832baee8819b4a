"""Reference of the pixel-loss family (L1, MSE, Charbonnier): the formulas as a user
would write them, and the op contract that the compiled and Triton kernels implement."""
import torch

from ..._codes import LossKind, Reduction
from ...conventions import acc_dtype

# formulas


def pixel_elementwise(pred, target, kind: str, eps: float = 1e-3):
    d = pred - target
    if kind == "l1":
        return d.abs()
    if kind == "mse":
        return d * d
    if kind == "charbonnier":  # sqrt(d^2 + eps^2)
        return torch.sqrt(d * d + eps * eps)
    raise ValueError(f"unknown pixel loss kind {kind!r}")


def reduce_weighted(loss, weight=None, reduction="mean"):
    """Applies an optional weight map, then none / sum / mean / weighted_mean
    (weighted_mean = sum(w * l) / sum(w broadcast to l's shape))."""
    if weight is not None:
        loss = loss * weight
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    if reduction == "weighted_mean":
        if weight is None:
            return loss.mean()
        return loss.sum() / weight.expand_as(loss).sum()
    raise ValueError(f"unknown reduction {reduction!r}")


def l1_loss(pred, target, weight=None, reduction="mean"):
    return reduce_weighted(pixel_elementwise(pred, target, "l1"), weight, reduction)


def mse_loss(pred, target, weight=None, reduction="mean"):
    return reduce_weighted(pixel_elementwise(pred, target, "mse"), weight, reduction)


def charbonnier_loss(pred, target, eps=1e-3, weight=None, reduction="mean"):
    return reduce_weighted(pixel_elementwise(pred, target, "charbonnier", eps), weight, reduction)


# op contract (codes: fastiqa/_codes.py, csrc/common/codes.h)


def pixel_fwd(pred, target, weight, weight_mode, channels, inner, kind, c, reduction, norm_scale, need_grad):
    """(out, gscale, grad): grad is d(out)/d(pred) for none/sum/mean and d(sum w*l)/d(pred)
    for weighted_mean, whose 1/divisor is gscale (1 otherwise)."""
    acc = acc_dtype(pred.dtype)
    d = pred.to(acc) - target.to(acc)
    if kind == LossKind.L1:
        value, deriv = d.abs(), torch.sign(d)
    elif kind == LossKind.MSE:
        value, deriv = d * d, 2 * d
    else:
        s = torch.sqrt(d * d + c)
        value, deriv = s, d / s
    wsum = None
    if weight is not None:  # (N,1,...) weights broadcast over channels in every mode
        w = weight.to(acc)
        value, deriv = value * w, deriv * w
        wsum = w.expand_as(value).sum()
    one = value.new_ones(())
    if reduction == Reduction.NONE:
        out, gscale = torch.empty_like(pred).copy_(value), one
    elif reduction == Reduction.SUM:
        out, gscale = value.sum(), one
    elif reduction == Reduction.MEAN:
        out, gscale = value.sum() / value.numel(), one
        deriv = deriv / value.numel()
    else:
        denom = (wsum * norm_scale) if wsum is not None else value.new_full((), float(value.numel()))
        out, gscale = value.sum() / denom, 1.0 / denom
    grad = torch.empty_like(pred).copy_(deriv) if need_grad else pred.new_empty((0,))
    return out, gscale, grad


def pixel_bwd(grad, grad_out, gscale, need_grad_pred, need_grad_target):
    scale = grad_out.to(gscale.dtype) * gscale
    gp = (grad.to(gscale.dtype) * scale).to(grad.dtype)
    gt = -gp if need_grad_target else grad.new_empty((0,))
    return (gp if need_grad_pred else grad.new_empty((0,))), gt
