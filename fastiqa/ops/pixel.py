"""Pixel-loss family (L1, MSE, Charbonnier): fake kernels and autograd of
fastiqa_C::pixel_fwd / pixel_bwd (schemas: fastiqa/_kernel_schemas.py).

pixel_fwd(pred, target, weight, ...) -> (out, gscale, grad)
    out     the loss map (reduction none, input dtype) or the reduced loss
            (0-dim, float32 / float64 accumulator dtype: a float16 sum cannot overflow)
    grad    computed in the same pass when need_grad (else empty): d(out)/d(pred) for
            none / sum / mean; for weighted_mean, whose divisor is known only after the
            pass, d(sum of w*l)/d(pred)
    gscale  what backward multiplies grad_out by: 1 / divisor for weighted_mean, else 1
pixel_bwd(grad, grad_out, gscale, need_grad_pred, need_grad_target)
    one pass: grad_pred = grad * grad_out * gscale, grad_target = -grad_pred

Backward on the CPU in eager mode hands the stored gradient over untouched when
grad_out * gscale == 1 (loss.backward() on a sum/mean loss): no pass, no allocation
(fastiqa/ops/_autograd.py). create_graph=True differentiates the reference formulas.
"""
import torch

from .._codes import Reduction
from ..backends import reference
from ..conventions import acc_dtype
from . import _autograd, _registry


def _fwd_fake(pred, target, weight, weight_mode, channels, inner, kind, c, reduction, norm_scale, need_grad):
    acc = acc_dtype(pred.dtype)
    out = torch.empty_like(pred) if reduction == Reduction.NONE else pred.new_empty((), dtype=acc)
    grad = torch.empty_like(pred) if need_grad else pred.new_empty((0,))
    return out, pred.new_empty((), dtype=acc), grad


def _bwd_fake(grad, grad_out, gscale, need_grad_pred, need_grad_target):
    gp = torch.empty_like(grad) if need_grad_pred else grad.new_empty((0,))
    gt = torch.empty_like(grad) if need_grad_target else grad.new_empty((0,))
    return gp, gt


def _setup_context(ctx, inputs, output):
    pred, target, weight = inputs[:3]
    _, gscale, grad = output
    ctx.args = inputs[3:10]
    ctx.reduction, ctx.need_grad = inputs[8], inputs[10]
    ctx.mark_non_differentiable(gscale, grad)
    ctx.set_materialize_grads(False)
    _autograd.save(ctx, (pred, target, weight), (grad, gscale))


def _backward(ctx, d_out, d_gscale, d_grad):
    none = (None,) * 9
    need_p, need_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if d_out is None or not (need_p or need_t):
        return None, None, *none
    if not ctx.need_grad:
        raise RuntimeError("fastiqa pixel loss: forward ran without need_grad; cannot differentiate")
    pred, target, weight = ctx.saved_tensors[:3]
    if _autograd.create_graph():
        ref = lambda p, t: (reference.pixel_fwd(p, t, weight, *ctx.args, False)[0],)  # noqa: E731
        gp, gt = _autograd.reference_grads(ref, (pred, target), (need_p, need_t), (d_out,))
        return gp, gt, *none
    stored, owned = _autograd.stored(ctx)
    if stored is None:  # a retained graph's later backward: recompute the gradient
        _, gscale, grad = getattr(torch.ops.fastiqa_C.pixel_fwd, ctx.overload)(pred, target, weight, *ctx.args, True)
        owned = True
    else:
        grad, gscale = stored
    if ctx.reduction == Reduction.NONE:  # loss map: the incoming gradient is a map too
        gp = d_out * grad
        return (gp if need_p else None), (-gp if need_t else None), *none
    bwd = getattr(torch.ops.fastiqa_C.pixel_bwd, ctx.overload)
    d_out = d_out.to(gscale.dtype)
    if owned and need_p and _autograd.handover_allowed(d_out, grad) and float(d_out) * float(gscale) == 1.0:
        gt = bwd(grad, d_out, gscale, False, True)[1] if need_t else None
        return grad, gt, *none  # handed over: ctx no longer holds it
    gp, gt = bwd(grad, d_out, gscale, need_p, need_t)
    return (gp if need_p else None), (gt if need_t else None), *none


_registry.register("pixel_fwd", _fwd_fake, reference.pixel_fwd, "fastiqa.backends.triton.pixel",
                   backward=_backward, setup_context=_setup_context)
_registry.register("pixel_bwd", _bwd_fake, reference.pixel_bwd, "fastiqa.backends.triton.pixel")


def learned_weight_loss(pred, target, weight, kind: str, c: float, reduction: str, norm_scale: float):
    """The loss in plain PyTorch, for a weight map that requires grad (the fused op treats
    the weight as a constant)."""
    acc = acc_dtype(pred.dtype)
    d = pred.to(acc) - target.to(acc)
    loss = d.abs() if kind == "l1" else d * d if kind == "mse" else torch.sqrt(d * d + c)
    if reduction == "weighted_mean":
        w = weight.to(acc)
        return (loss * w).sum() / (w.expand_as(loss).sum() * norm_scale)
    out = reference.reduce_weighted(loss, weight.to(acc), reduction)
    return out.to(pred.dtype) if reduction == "none" else out
